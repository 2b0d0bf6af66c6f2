// blobd: serving large blobs without holding up other clients
// (../shared/spec/apps.md).
//
//   blobd --blob FILE   GET / serves FILE
//   blobd --root DIR    GET /PATH serves DIR/PATH, never anything outside DIR
//
// Bytes go from the file to the socket by sendfile(2), at most --chunk-size
// of them before the other downloads get a turn. Range (one range) gives
// 206 or 416; If-Match / If-Unmodified-Since give 412 and
// If-None-Match / If-Modified-Since 304 (RFC 9110 13); the ETag hashes the
// file's identity (device, inode, size, mtime) with xxHash.
#include "../common/app.hpp"

#include <tendril/core/open_beneath.hpp>
#include <tendril/http/date_cache.hpp>
#include <tendril/http/file_path.hpp>
#include <tendril/http/range.hpp>
#include <tendril/http/server.hpp>
#include <tendril/http/url.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

namespace {

using namespace tendril;
using tendril::http::BaseHTTPRequestHandler;

struct BlobConfig {
    std::string blob;       // --blob FILE, or
    std::string root;       // --root DIR
    int root_fd = -1;
    std::size_t chunk_size = 1 << 20;
};

// Closes the file however the request ends.
struct FileDescriptor {
    int fd = -1;
    ~FileDescriptor() {
        if (fd >= 0) ::close(fd);
    }
};

class BlobHandler : public BaseHTTPRequestHandler {
public:
    explicit BlobHandler(const BlobConfig& config) : cfg_(config) {}

    void do_GET() override {
        std::string name;
        FileDescriptor file;
        if (!open_target(&file, &name)) return;
        struct stat st;
        if (::fstat(file.fd, &st) != 0) return not_found("cannot stat the file: " + std::string(std::strerror(errno)));
        if (S_ISDIR(st.st_mode)) return not_found("is a directory");
        if (!S_ISREG(st.st_mode)) return not_found("not a regular file");
        serve(file.fd, st, name);
    }

private:
    bool open_target(FileDescriptor* file, std::string* name) {
        if (!cfg_.blob.empty()) {
            if (http::target_path(path) != "/") return not_found("no such blob: this server serves its one blob at /"), false;
            file->fd = ::open(cfg_.blob.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
            if (file->fd < 0) return cannot_open(errno), false;
            auto slash = cfg_.blob.rfind('/');
            *name = slash == std::string::npos ? cfg_.blob : cfg_.blob.substr(slash + 1);
            return true;
        }
        std::string reason;
        auto rel = http::target_to_relative_path(path, &reason);
        if (!rel) return not_found(reason), false;
        // "/notes.txt/" names a directory: let the kernel refuse a file there.
        std::string_view p = http::target_path(path);
        bool as_directory = !rel->empty() && (p.back() == '/' || (p.size() >= 3 && (p.substr(p.size() - 3) == "%2F" ||
                                                                                   p.substr(p.size() - 3) == "%2f")));
        file->fd = open_beneath(cfg_.root_fd, cfg_.root, as_directory ? *rel + "/" : *rel);
        if (file->fd < 0) return cannot_open(errno), false;
        auto slash = rel->rfind('/');
        *name = slash == std::string::npos ? *rel : rel->substr(slash + 1);
        if (name->empty()) *name = "index";
        return true;
    }

    static std::string why(int e) {
        switch (e) {
        case ENOENT: case ENOTDIR: return "no such file";
        case EACCES: case EPERM: return "permission denied";
        case EXDEV: case ELOOP: return "the path leaves the served directory";
        default: return std::strerror(e);
        }
    }

    // Out of descriptors or memory is the server's passing trouble, not a
    // missing file: 503, so that caches do not learn a 404.
    void cannot_open(int e) {
        if (e == EMFILE || e == ENFILE || e == ENOMEM) {
            http::Response r(503, "503 service unavailable: " + std::string(std::strerror(e)) + "\n",
                             "text/plain; charset=utf-8");
            r.headers.add("Retry-After", "1");
            return send(r);
        }
        not_found(why(e));
    }

    void not_found(const std::string& reason) {
        send(http::Response(404, "404 not found: " + reason + "\n", "text/plain; charset=utf-8"));
    }

    void serve(int fd, const struct stat& st, const std::string& name) {
        auto size = static_cast<std::uint64_t>(st.st_size);
        std::string etag = make_etag(st);
        std::string last_modified = http::http_date(st.st_mtime);
        // Preconditions in the order of RFC 9110 13.2.2; each If-* is ignored
        // where that order says so, and a date that does not parse is no
        // condition at all.
        if (auto im = field_list("If-Match")) {
            if (!etag_matches(*im, etag, /*weak=*/false)) return precondition_failed();
        } else if (auto ius = headers.get("If-Unmodified-Since")) {
            auto t = http::parse_http_date(*ius);
            if (t && st.st_mtime > *t) return precondition_failed();
        }
        if (auto inm = field_list("If-None-Match")) {
            if (etag_matches(*inm, etag, /*weak=*/true)) return not_modified(etag, last_modified);
        } else if (auto ims = headers.get("If-Modified-Since")) {
            auto t = http::parse_http_date(*ims);
            if (t && st.st_mtime <= *t) return not_modified(etag, last_modified);
        }
        // HEAD takes Range too: apps.md has HEAD answered exactly like GET
        // without the body, where RFC 9110 14.2 would ignore it.
        http::ByteRange range;
        if (auto r = headers.get("Range")) {
            auto if_range = headers.get("If-Range");
            if (!if_range || if_range_holds(*if_range, etag, st.st_mtime)) range = http::parse_range(*r, size);
        }
        if (range.kind == http::ByteRange::Kind::unsatisfiable) {
            http::Response r(416, "416 range not satisfiable: the file has " + std::to_string(size) + " bytes\n",
                             "text/plain; charset=utf-8");
            r.headers.add("Content-Range", "bytes */" + std::to_string(size));
            return send(r);
        }
        bool partial = range.kind == http::ByteRange::Kind::satisfiable;
        std::uint64_t first = partial ? range.first : 0;
        std::uint64_t length = partial ? range.length() : size;
        send_response(partial ? 206 : 200);
        send_header("Content-Type", cfg_.blob.empty() ? http::guess_content_type(name) : "application/octet-stream");
        send_header("Content-Length", std::to_string(length));
        send_header("Content-Disposition", "inline; filename=\"" + quote(name) + "\"");
        send_header("Last-Modified", last_modified);
        send_header("ETag", etag);
        send_header("Accept-Ranges", "bytes");
        if (partial)
            send_header("Content-Range", "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) +
                                             "/" + std::to_string(size));
        end_headers();
        send_file(fd, first, length, cfg_.chunk_size);
    }

    // A list header may come in several fields: they are one comma list.
    std::optional<std::string> field_list(std::string_view name) const {
        auto all = headers.get_all(name);
        if (all.empty()) return std::nullopt;
        std::string joined;
        for (auto v : all) {
            if (!joined.empty()) joined += ',';
            joined.append(v);
        }
        return joined;
    }

    // If-Range: a strong entity tag equal to ours, or exactly our
    // modification time (RFC 9110 13.1.5); a weak tag never holds.
    static bool if_range_holds(std::string_view v, const std::string& etag, std::time_t mtime) {
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        if (v.substr(0, 1) == "\"" || v.substr(0, 2) == "W/") return v == etag;
        auto t = http::parse_http_date(v);
        return t && *t == mtime;
    }

    void precondition_failed() {
        send(http::Response(412, "412 precondition failed: the file is not the version the request names\n",
                            "text/plain; charset=utf-8"));
    }

    void not_modified(const std::string& etag, const std::string& last_modified) {
        send_response(304);
        send_header("ETag", etag);
        send_header("Last-Modified", last_modified);
        end_headers();
    }

    static std::string make_etag(const struct stat& st) {
        struct {
            std::uint64_t dev, ino, size;
            std::int64_t mtime_s, mtime_ns;
        } id{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
             static_cast<std::uint64_t>(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
        char buf[24];
        std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(XXH3_64bits(&id, sizeof id)));
        return buf;
    }

    // If-None-Match compares weakly, If-Match strongly (RFC 9110 8.8.3.2):
    // a W/ tag matches nothing there. "*" matches any existing file.
    static bool etag_matches(std::string_view list, const std::string& etag, bool weak) {
        while (!list.empty()) {
            auto comma = list.find(',');
            std::string_view item = list.substr(0, comma);
            while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
            while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
            if (item.substr(0, 2) == "W/") {
                if (weak) item.remove_prefix(2);
                else item = {};
            }
            if (item == "*" || item == etag) return true;
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
        return false;
    }

    static std::string quote(const std::string& s) {
        std::string out;
        for (char c : s) {
            if (c == '"' || c == '\\') out += '\\';
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
            out += c;
        }
        return out;
    }

    const BlobConfig& cfg_;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"blobd: serves a blob (--blob FILE) or a directory (--root DIR) with sendfile, Range and "
                 "conditional requests", "blobd"};
    tendril::apps::CommonOptions opts;
    tendril::apps::add_common_options(app, opts);
    BlobConfig cfg;
    auto* blob = app.add_option("--blob", cfg.blob, "serve this file at /");
    auto* root = app.add_option("--root", cfg.root, "serve the files under this directory")->check(CLI::ExistingDirectory);
    blob->excludes(root);
    app.add_option("--chunk-size", cfg.chunk_size, "bytes sent to one client before the others get a turn")
        ->check(CLI::Range(std::size_t(4096), std::size_t(1) << 30))
        ->capture_default_str();
    tendril::apps::parse_or_exit(app, argc, argv);
    if (cfg.blob.empty() == cfg.root.empty()) {
        std::cerr << "blobd: give exactly one of --blob FILE or --root DIR\nRun with --help for usage.\n";
        return 2;
    }
    if (!cfg.root.empty()) {
        cfg.root_fd = ::open(cfg.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cfg.root_fd < 0) {
            std::cerr << "blobd: cannot open --root " << cfg.root << ": " << std::strerror(errno) << "\n";
            return 2;
        }
    }
    tendril::apps::run_servers("blobd", opts, [&](tendril::Listener listener) {
        return std::make_unique<tendril::http::HTTPServer<BlobHandler>>(std::move(listener), [&] {
            return std::make_unique<BlobHandler>(cfg);
        });
    });
    return 0;
}
