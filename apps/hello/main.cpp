// hello: the smallest handler, for throughput runs.
//   GET /plaintext -> "Hello, World!"   GET /json -> {"message":"Hello, World!"}
#include "../common/app.hpp"

#include <tendril/http/server.hpp>

namespace {

using tendril::http::BaseHTTPRequestHandler;

class HelloHandler : public BaseHTTPRequestHandler {
public:
    void do_GET() override {
        if (path == "/plaintext") {
            send_response(200);
            send_header("Content-Type", "text/plain");
            send_header("Content-Length", "13");
            end_headers();
            wfile.write("Hello, World!");
        } else if (path == "/json") {
            send(tendril::http::Response(200, R"({"message":"Hello, World!"})", "application/json"));
        } else {
            send_error(404, "Not Found", "Try /plaintext or /json");
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hello: Hello, World! over HTTP, for throughput benchmarks", "hello"};
    tendril::apps::CommonOptions opts;
    tendril::apps::add_common_options(app, opts);
    tendril::apps::parse_or_exit(app, argc, argv);
    tendril::apps::run_servers("hello", opts, [](tendril::Listener listener) {
        return std::make_unique<tendril::http::HTTPServer<HelloHandler>>(std::move(listener));
    });
    return 0;
}
