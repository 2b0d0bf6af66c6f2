// hashd: the streaming upload hasher (../shared/spec/apps.md).
//
// Any method with a request body (POST, PUT; GET with an empty one): the
// answer is the lowercase hex digest of the body. ?alg= picks md5 (default),
// sha1, sha256, sha512, xxh64, xxh3 or xxh128. The body is hashed piece by
// piece as it arrives, so memory stays flat whatever its size, and an upload
// announced with Expect: 100-continue gets its 100 only once the algorithm
// is known to be good.
#include "../common/app.hpp"

#include <tendril/core/digest.hpp>
#include <tendril/http/server.hpp>
#include <tendril/http/url.hpp>

namespace {

using namespace tendril;
using tendril::http::BaseHTTPRequestHandler;

class HashHandler : public BaseHTTPRequestHandler {
public:
    static constexpr http::BodyPolicy body_policy = http::BodyPolicy::streamed();

    void do_GET() override { hash(); }
    void do_POST() override { hash(); }
    void do_PUT() override { hash(); }
    void do_PATCH() override { hash(); }
    void do_DELETE() override { hash(); }

private:
    void hash() {
        std::string_view target = path;
        auto q = target.find('?');
        std::string alg = "md5";
        if (q != std::string_view::npos) {
            if (auto a = http::query_param(target.substr(q + 1), "alg")) alg = *a;
        }
        std::unique_ptr<Digest> digest = Digest::create(alg);
        if (!digest) {
            std::string names;
            for (auto n : Digest::names()) names += (names.empty() ? "" : ", ") + std::string(n);
            return send_error(400, "Unknown digest algorithm", "alg must be one of: " + names);
        }
        // Reading the first piece sends 100 Continue when the client asked.
        for (std::string_view piece; !(piece = rfile.read_chunk()).empty();) digest->update(piece);
        send(http::Response(200, digest->hex_digest(), "text/plain; charset=utf-8"));
    }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hashd: answers any upload with the hex digest of its body (?alg=md5|sha1|sha256|sha512|"
                 "xxh64|xxh3|xxh128)", "hashd"};
    tendril::apps::CommonOptions opts;
    tendril::apps::add_common_options(app, opts);
    tendril::apps::parse_or_exit(app, argc, argv);
    tendril::apps::run_servers("hashd", opts, [](tendril::Listener listener) {
        return std::make_unique<tendril::http::HTTPServer<HashHandler>>(std::move(listener));
    });
    return 0;
}
