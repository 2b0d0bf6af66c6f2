// HTTP status codes: reason phrases and explanations (Python's HTTPStatus).
#pragma once

namespace tendril::http {

const char* reason_phrase(int code);       // "Not Found"; "" if unknown
const char* status_explanation(int code);  // "Nothing matches the given URI"; "" if unknown
// 1xx, 204, 205 and 304 responses carry no body (RFC 9110 6.4.1, 15.3.6).
bool status_has_body(int code);

}  // namespace tendril::http
