// hello: the smallest handler, for throughput runs.
//   GET /plaintext -> "Hello, World!"   GET /json -> {"message":"Hello, World!"}
#include "../common/app.hpp"

#include <tendril/http/server.hpp>
#include <tendril/http/url.hpp>

namespace {

using tendril::http::BaseHTTPRequestHandler;

class HelloHandler : public BaseHTTPRequestHandler {
public:
    void do_GET() override {
        // The route is the path alone: a query string or the absolute form
        // (RFC 9112 3.2.2, "GET http://host/plaintext") names the same resource.
        std::string_view route = tendril::http::target_path(path);
        if (route == "/plaintext") {
            send_response(200);
            send_header("Content-Type", "text/plain");
            send_header("Content-Length", "13");
            end_headers();
            wfile.write("Hello, World!");
        } else if (route == "/json") {
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
