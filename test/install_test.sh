#!/usr/bin/env bash
# `make install` into a temporary PREFIX, then compile and link a small
# program outside the tree with `pkg-config --cflags --libs tendril`, and run
# it: fibers, a channel, an HTTPServer and the client talking to it.
set -euo pipefail
ROOT=${TENDRIL_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${TENDRIL_BUILD:-$ROOT/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make_args=(--no-print-directory -C "$ROOT" install PREFIX="$tmp/prefix")
extra=()
case "$(basename "$BUILD")" in
  build-san*) make_args+=(SAN=address,undefined); extra+=(-fsanitize=address,undefined) ;;
esac
make "${make_args[@]}" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }

test -f "$tmp/prefix/lib/libtendril.a"
test -f "$tmp/prefix/include/tendril/http/server.hpp"
test -f "$tmp/prefix/lib/pkgconfig/tendril.pc"

mkdir -p "$tmp/outside"
cat > "$tmp/outside/main.cpp" <<'CPP'
#include <tendril/http/client.hpp>
#include <tendril/http/server.hpp>
#include <tendril/sched/channel.hpp>
#include <cstdio>

class Hello : public tendril::http::BaseHTTPRequestHandler {
public:
    void do_GET() override { send(tendril::http::Response(200, "hello from outside the tree")); }
};

int main() {
    int rc = 1;
    tendril::run([&] {
        tendril::Channel<int> ch;
        tendril::go([&] { (void)ch.send(41); });
        int v = 0;
        (void)ch.recv(v);
        tendril::http::ServerConfig cfg;
        cfg.access_log = false;
        tendril::http::HTTPServer<Hello> server(
            tendril::http::BaseHTTPServer::bind(*tendril::SocketAddress::ip("127.0.0.1", 0)), nullptr, cfg);
        auto srv = tendril::go([&] { server.serve_forever(); });
        tendril::http::Client c(server.server_address());
        auto r = c.get("/", tendril::Deadline::after(std::chrono::seconds(5)));
        if (r && r->body == "hello from outside the tree" && v + 1 == 42) rc = 0;
        std::printf("%d %s\n", r ? r->status : 0, r ? r->body.c_str() : "(failed)");
        server.shutdown();
        (void)srv.join();
    });
    return rc;
}
CPP
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
flags=$(pkg-config --cflags --libs tendril)
echo "pkg-config --cflags --libs tendril: $flags"
(cd "$tmp/outside" && g++ -O1 "${extra[@]}" main.cpp $flags -o prog)
out=$("$tmp/outside/prog")
echo "$out"
[ "$out" = "200 hello from outside the tree" ]
