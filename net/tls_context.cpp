// TlsContext (see tls_context.hpp).
#include "tendril/net/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <strings.h>
#include <unistd.h>

#include <cstdlib>

#include <cstring>

namespace tendril {

namespace {

// kTLS is there when Linux's tls module is (or by TENDRIL_KTLS=1, to test
// the socket-BIO path where it is not; =0 never).
bool kernel_has_tls() {
    const char* force = std::getenv("TENDRIL_KTLS");
    if (force) return std::strcmp(force, "1") == 0;
    return ::access("/sys/module/tls", F_OK) == 0;
}

SSL_CTX* new_ctx(bool server) {
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) return nullptr;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    // Read whole records and what follows in one read(2), not header then body.
    SSL_CTX_set_read_ahead(ctx, 1);
#ifdef SSL_OP_ENABLE_KTLS
    if (kernel_has_tls()) SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
#endif
    if (server) {
        // No session cache between connections of a fiber server: tickets
        // carry the state instead (stateless resumption, as Go does).
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    return ctx;
}

// The certificate and key of a server context; "" or why not.
std::string load_pair(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
        return "tls: cannot load the certificate " + cert_file + ": " + TlsContext::take_errors();
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return "tls: cannot load the key " + key_file + ": " + TlsContext::take_errors();
    if (SSL_CTX_check_private_key(ctx) != 1)
        return "tls: the key " + key_file + " does not match the certificate " + cert_file;
    return "";
}

// DNS names a certificate is for: subjectAltName DNS entries, else the CN.
std::vector<std::string> names_of(SSL_CTX* ctx) {
    std::vector<std::string> out;
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) return out;
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
            if (n->type != GEN_DNS) continue;
            const unsigned char* p = ASN1_STRING_get0_data(n->d.dNSName);
            out.emplace_back(reinterpret_cast<const char*>(p), static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
        }
        GENERAL_NAMES_free(sans);
    }
    if (out.empty()) {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) out.emplace_back(cn);
    }
    return out;
}

// "*.example.com" covers "a.example.com", not "example.com" or "a.b.example.com".
bool name_matches(const std::string& pattern, const char* host) {
    if (pattern.rfind("*.", 0) == 0) {
        const char* dot = std::strchr(host, '.');
        return dot && dot != host && strcasecmp(dot + 1, pattern.c_str() + 2) == 0;
    }
    return strcasecmp(pattern.c_str(), host) == 0;
}

int on_server_name(SSL* ssl, int*, void* arg) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the first certificate
    if (SSL_CTX* other = static_cast<const TlsContext*>(arg)->context_for(name)) SSL_set_SSL_CTX(ssl, other);
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string TlsContext::take_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        // "error:0A000086:SSL routines::certificate verify failed": the reason is the part after the last ':'
        std::string s(buf);
        std::size_t colon = s.rfind(':');
        out += colon == std::string::npos ? s : s.substr(colon + 1);
    }
    return out.empty() ? "unknown error" : out;
}

TlsContext::Made TlsContext::server(const std::string& cert_file, const std::string& key_file) {
    Made m;
    SSL_CTX* ctx = new_ctx(true);
    if (!ctx) {
        m.error = "tls: " + take_errors();
        return m;
    }
    if (std::string why = load_pair(ctx, cert_file, key_file); !why.empty()) {
        SSL_CTX_free(ctx);
        m.error = why;
        return m;
    }
    m.context.reset(new TlsContext(ctx, true, false));
    m.context->ktls_ = kernel_has_tls();
    SSL_CTX_set_tlsext_servername_callback(ctx, on_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx, m.context.get());
    return m;
}

std::string TlsContext::add_certificate(const std::string& cert_file, const std::string& key_file) {
    if (!server_) return "tls: add_certificate() is for a server context";
    SSL_CTX* ctx = new_ctx(true);
    if (!ctx) return "tls: " + take_errors();
    if (std::string why = load_pair(ctx, cert_file, key_file); !why.empty()) {
        SSL_CTX_free(ctx);
        return why;
    }
    sni_.push_back({ctx, names_of(ctx)});
    return "";
}

SSL_CTX* TlsContext::context_for(const char* server_name) const {
    for (const std::string& n : names_of(ctx_))
        if (name_matches(n, server_name)) return nullptr;  // the first certificate covers it
    for (const Named& c : sni_)
        for (const std::string& n : c.names)
            if (name_matches(n, server_name)) return c.ctx;
    return nullptr;
}

TlsContext::Made TlsContext::client(const std::string& ca_file, bool verify) {
    Made m;
    SSL_CTX* ctx = new_ctx(false);
    if (!ctx) {
        m.error = "tls: " + take_errors();
        return m;
    }
    if (verify) {
        int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                 : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
        if (ok != 1) {
            m.error = "tls: cannot load the CA certificates " + (ca_file.empty() ? std::string("(system)") : ca_file) +
                      ": " + take_errors();
            SSL_CTX_free(ctx);
            return m;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    m.context.reset(new TlsContext(ctx, false, verify));
    m.context->ktls_ = kernel_has_tls();
    return m;
}

TlsContext::~TlsContext() {
    for (Named& c : sni_) SSL_CTX_free(c.ctx);
    SSL_CTX_free(ctx_);
}

}  // namespace tendril
