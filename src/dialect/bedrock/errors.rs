//! Bedrock's error names as Anthropic error types.
//!
//! Bedrock names an error twice: in the `X-Amzn-ErrorType` header of an error answer
//! (`ValidationException:http://internal.amazon.com/…`) and in the `:exception-type` of an
//! exception frame inside a stream (`throttlingException`). The name is more precise than the
//! HTTP status (a 400 can be a validation error or a refused model; a 503 is an overload), so it
//! decides where it is known (TRANSLATION.md §3).

use crate::http::ErrorType;

/// The Anthropic error type for a Bedrock error name, in either spelling; `Api` for a name not
/// known.
pub fn type_of_exception(name: &str) -> ErrorType {
    known(name).unwrap_or(ErrorType::Api)
}

/// The type an `X-Amzn-ErrorType` header value names, if a known one.
pub fn type_of_header(value: &str) -> Option<ErrorType> {
    known(value.split(':').next().unwrap_or_default().trim())
}

fn known(name: &str) -> Option<ErrorType> {
    let lower = |s: &str| s.eq_ignore_ascii_case(name);
    let is = |names: &[&str]| names.iter().any(|n| lower(n));
    Some(
        if is(&["ThrottlingException", "ServiceQuotaExceededException"]) {
            ErrorType::RateLimit
        } else if is(&["ServiceUnavailableException", "ModelNotReadyException"]) {
            ErrorType::Overloaded
        } else if is(&["ModelTimeoutException"]) {
            ErrorType::Timeout
        } else if is(&["ValidationException"]) {
            ErrorType::InvalidRequest
        } else if is(&["AccessDeniedException"]) {
            ErrorType::Permission
        } else if is(&["ResourceNotFoundException"]) {
            ErrorType::NotFound
        } else if is(&[
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ExpiredTokenException",
            "IncompleteSignatureException",
            "MissingAuthenticationTokenException",
        ]) {
            ErrorType::Authentication
        } else if is(&[
            "InternalServerException",
            "ModelStreamErrorException",
            "ModelErrorException",
        ]) {
            ErrorType::Api
        } else {
            return None;
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_either_spelling() {
        assert_eq!(
            type_of_exception("throttlingException"),
            ErrorType::RateLimit
        );
        assert_eq!(
            type_of_exception("serviceUnavailableException"),
            ErrorType::Overloaded
        );
        assert_eq!(
            type_of_exception("modelTimeoutException"),
            ErrorType::Timeout
        );
        assert_eq!(
            type_of_exception("validationException"),
            ErrorType::InvalidRequest
        );
        assert_eq!(
            type_of_exception("modelStreamErrorException"),
            ErrorType::Api
        );
        assert_eq!(type_of_exception("somethingNew"), ErrorType::Api);
        assert_eq!(
            type_of_header(
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            ),
            Some(ErrorType::InvalidRequest)
        );
        assert_eq!(
            type_of_header("ThrottlingException"),
            Some(ErrorType::RateLimit)
        );
        assert_eq!(
            type_of_header("UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/"),
            Some(ErrorType::Authentication)
        );
        assert_eq!(type_of_header("Whatever"), None);
    }
}
