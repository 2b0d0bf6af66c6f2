// TlsContext: what a TLS endpoint is configured with (an OpenSSL SSL_CTX):
// the server's certificate chain and key, or the client's trust anchors.
//
//   auto server = TlsContext::server("cert.pem", "key.pem");   // TLS 1.2+
//   if (!server) fatal("%s", server.error.c_str());
//   auto client = TlsContext::client("ca.pem");                // "" = the system's CAs
//
// Shared (std::shared_ptr) by every connection made with it; immutable once
// made, so threads may share it. Every context sets SSL_MODE_RELEASE_BUFFERS
// (an idle connection gives its 16 KiB+ record buffers back, so a parked
// TLS client costs a few KB) and asks for kernel TLS where the kernel has it.
#pragma once

#include <memory>
#include <string>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace tendril {

class TlsContext {
public:
    // The context, or null with `error` saying why ("tls: cert.pem: no such file",
    // "tls: the key does not match the certificate", ...).
    struct Made {
        std::shared_ptr<TlsContext> context;
        std::string error;
        explicit operator bool() const { return context != nullptr; }
        TlsContext* operator->() const { return context.get(); }
    };

    // A server with one certificate chain (PEM, leaf first) and its key.
    // More pairs may be added: the one whose names match the client's SNI
    // is presented, the first one otherwise.
    static Made server(const std::string& cert_file, const std::string& key_file);
    // Add another certificate for SNI; "" on success, else why not.
    std::string add_certificate(const std::string& cert_file, const std::string& key_file);

    // A client that verifies the server's chain against ca_file (PEM; ""
    // for the system's store) and its name against the one asked for.
    // verify = false accepts any certificate (tests, `curl -k`).
    static Made client(const std::string& ca_file = "", bool verify = true);

    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    bool is_server() const { return server_; }
    // The kernel can do the record encryption (Linux's `tls` module is
    // loaded; TENDRIL_KTLS=0 turns it off): sessions then use OpenSSL's
    // socket BIO, which hands the keys over after the handshake.
    bool kernel_tls() const { return ktls_; }
    bool verifies() const { return verify_; }
    ssl_ctx_st* native() const { return ctx_; }
    // The SNI context for a name, or null (server side).
    ssl_ctx_st* context_for(const char* server_name) const;

    // OpenSSL's error queue, drained, as one line ("" if empty).
    static std::string take_errors();

private:
    TlsContext(ssl_ctx_st* ctx, bool server, bool verify) : ctx_(ctx), server_(server), verify_(verify) {}

    ssl_ctx_st* ctx_;
    bool server_;
    bool verify_;
    bool ktls_ = false;
    // Extra certificates for SNI: a context each, with the names it covers.
    struct Named {
        ssl_ctx_st* ctx;
        std::vector<std::string> names;  // DNS names from subjectAltName (or the CN)
    };
    std::vector<Named> sni_;
};

}  // namespace tendril
