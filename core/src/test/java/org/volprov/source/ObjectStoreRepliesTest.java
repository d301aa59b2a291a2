package org.volprov.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

class ObjectStoreRepliesTest {

    @ParameterizedTest(name = "HTTP {0} {1} -> {2}")
    @CsvSource({
            "404, ,                   IMAGE_NOT_FOUND",
            "404, NoSuchKey,          IMAGE_NOT_FOUND",
            "403, ,                   ACCESS_DENIED",
            "403, AccessDenied,       ACCESS_DENIED",
            "400, ExpiredToken,       ACCESS_DENIED",
            "400, AuthorizationHeaderMalformed, ACCESS_DENIED",
            "403, InvalidObjectState, SOURCE_REFUSED",
            "400, ,                   SOURCE_REFUSED",
            "400, InvalidArgument,    SOURCE_REFUSED",
            "400, InvalidRequest,     SOURCE_REFUSED",
            "400, SomeNewCode,        SOURCE_REFUSED",
            "301, PermanentRedirect,  SOURCE_REFUSED",
            "405, ,                   SOURCE_REFUSED",
            "405, MethodNotAllowed,   SOURCE_REFUSED",
            "409, ,                   SOURCE_REFUSED",
            "411, MissingContentLength, SOURCE_REFUSED",
            "413, ,                   SOURCE_REFUSED",
            "414, ,                   SOURCE_REFUSED",
            "431, ,                   SOURCE_REFUSED",
            "501, ,                   SOURCE_REFUSED",
            "501, NotImplemented,     SOURCE_REFUSED",
            "505, ,                   SOURCE_REFUSED",
            "412, ,                   IMAGE_CHANGED",
            "412, PreconditionFailed, IMAGE_CHANGED",
            "416, ,                   INVALID_REQUEST",
            "416, InvalidRange,       INVALID_REQUEST",
            "400, RequestTimeout,     SOURCE_UNAVAILABLE",
            "409, OperationAborted,   SOURCE_UNAVAILABLE",
            "503, SlowDown,           SOURCE_UNAVAILABLE",
            "503, ,                   SOURCE_UNAVAILABLE",
            "500, InternalError,      SOURCE_UNAVAILABLE",
            "502, ,                   SOURCE_UNAVAILABLE",
            "504, ,                   SOURCE_UNAVAILABLE",
            "307, TemporaryRedirect,  SOURCE_UNAVAILABLE",
            "408, ,                   SOURCE_UNAVAILABLE",
            "425, ,                   SOURCE_UNAVAILABLE",
            "429, ,                   SOURCE_UNAVAILABLE",
            "0,   ,                   SOURCE_UNAVAILABLE",
    })
    void classify_followsTheTable(int status, String code, ErrorCode expected) {
        assertThat(ObjectStoreReplies.classify(status, code, false)).isEqualTo(expected);
    }

    @Test
    void classify_throttlingIsRetryable_whateverTheStatus() {
        assertThat(ObjectStoreReplies.classify(400, null, true)).isEqualTo(ErrorCode.SOURCE_UNAVAILABLE);
        assertThat(ObjectStoreReplies.classify(400, "Throttling", false)).isEqualTo(ErrorCode.SOURCE_UNAVAILABLE);
    }

    @Test
    void error_saysWhatToDo() {
        ProvisioningException archived = ObjectStoreReplies.error("S3", "reading", "s3://b/k", 403, "InvalidObjectState",
                "The operation is not valid for the object's storage class", false, null);
        assertThat(archived.code()).isEqualTo(ErrorCode.SOURCE_REFUSED);
        assertThat(archived.getMessage()).contains("HTTP 403, InvalidObjectState", "not retried", "restore it first");
        assertThat(ObjectStoreReplies.error("MinIO", "reading", "s3://b/k", 503, "SlowDown", null, false, null)
                .getMessage()).contains("(retryable)", "MinIO");
    }

    @Test
    void statedSize_refusesWhatIsMissingNegativeOrAbsurd_neverZero() {
        for (Long bad : new Long[] {null, -1L, ObjectStoreReplies.MAX_OBJECT_BYTES + 1}) {
            assertThatThrownBy(() -> ObjectStoreReplies.statedSize("S3", "s3://b/k", bad)).as("%s", bad)
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_REFUSED));
        }
        for (String bad : new String[] {null, "", "12abc", "-5", " "}) {
            assertThatThrownBy(() -> ObjectStoreReplies.statedSize("MinIO", "s3://b/k", bad)).as("'%s'", bad)
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_REFUSED));
        }
        assertThat(ObjectStoreReplies.statedSize("S3", "s3://b/k", 0L)).isZero();
        assertThat(ObjectStoreReplies.statedSize("MinIO", "s3://b/k", " 4096 ")).isEqualTo(4096);
    }

    @Test
    void statedEtag_refusesAMissingOne_andDropsQuotes() {
        assertThat(ObjectStoreReplies.statedEtag("S3", "x", "\"abc-2\"")).isEqualTo("abc-2");
        for (String bad : new String[] {null, "", "\"\""}) {
            assertThatThrownBy(() -> ObjectStoreReplies.statedEtag("S3", "x", bad))
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_REFUSED));
        }
    }

    @Test
    void checkEtag_acceptsTheSameVersionQuotedOrWeak_andRefusesAnother() {
        assertThatCode(() -> ObjectStoreReplies.checkEtag("S3", "x", "abc", "\"abc\"")).doesNotThrowAnyException();
        assertThatCode(() -> ObjectStoreReplies.checkEtag("S3", "x", "abc", "W/\"abc\"")).doesNotThrowAnyException();
        assertThatThrownBy(() -> ObjectStoreReplies.checkEtag("S3", "x", "abc", "\"abd\""))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.IMAGE_CHANGED));
        assertThatThrownBy(() -> ObjectStoreReplies.checkEtag("S3", "x", "abc", "\"ABC\""))
                .as("ETags are compared exactly").isInstanceOf(ProvisioningException.class);
        assertThatThrownBy(() -> ObjectStoreReplies.checkEtag("S3", "x", "abc", null))
                .isInstanceOfSatisfying(ProvisioningException.class,
                        e -> assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_REFUSED));
        assertThat(ObjectStoreReplies.ifMatch("abc")).isEqualTo("\"abc\"");
        assertThat(ObjectStoreReplies.ifMatch("\"abc\"")).isEqualTo("\"abc\"");
    }

    @Test
    void checkRange_refusesAnIgnoredOrAnotherRange() {
        assertThatCode(() -> ObjectStoreReplies.checkRange("S3", "x", 100, "bytes 100-199/1000"))
                .doesNotThrowAnyException();
        assertThatCode(() -> ObjectStoreReplies.checkRange("S3", "x", 0, null)).doesNotThrowAnyException();
        for (String bad : new String[] {null, "bytes 0-99/1000", "bytes */1000", "items 100-199/1000"}) {
            assertThatThrownBy(() -> ObjectStoreReplies.checkRange("S3", "x", 100, bad)).as("%s", bad)
                    .isInstanceOfSatisfying(ProvisioningException.class,
                            e -> assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_REFUSED));
        }
    }
}
