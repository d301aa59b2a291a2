package org.volprov.jdbc;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import org.jdbi.v3.core.ConnectionException;
import org.jdbi.v3.core.argument.Argument;

/** What differs between the two databases: time columns, the JSON column, row locks, lost connections. */
enum Dialect {
    /** Times as INTEGER microseconds since the epoch; writes serialized by the database lock. */
    SQLITE {
        @Override
        Argument time(Instant t) {
            return (pos, st, ctx) -> {
                if (t == null) {
                    st.setNull(pos, Types.BIGINT);
                } else {
                    st.setLong(pos, micros(t));
                }
            };
        }

        @Override
        Instant time(ResultSet rs, String column) throws SQLException {
            long v = rs.getLong(column);
            return rs.wasNull() ? null : Instant.EPOCH.plus(v, ChronoUnit.MICROS);
        }

        @Override
        String json(String param) {
            return param;
        }

        @Override
        String skipLocked() {
            return "";
        }
    },
    /** Times as TIMESTAMPTZ (microseconds), the request as JSONB, claims with SKIP LOCKED. */
    POSTGRESQL {
        @Override
        Argument time(Instant t) {
            return (pos, st, ctx) -> {
                if (t == null) {
                    st.setNull(pos, Types.TIMESTAMP_WITH_TIMEZONE);
                } else {
                    st.setObject(pos, OffsetDateTime.ofInstant(t.truncatedTo(ChronoUnit.MICROS), ZoneOffset.UTC));
                }
            };
        }

        @Override
        Instant time(ResultSet rs, String column) throws SQLException {
            OffsetDateTime v = rs.getObject(column, OffsetDateTime.class);
            return v == null ? null : v.toInstant();
        }

        @Override
        String json(String param) {
            return "CAST(" + param + " AS jsonb)";
        }

        @Override
        String skipLocked() {
            return " FOR UPDATE SKIP LOCKED";
        }
    };

    /** A bindable time, kept to the microsecond as both databases do; null binds SQL NULL. */
    abstract Argument time(Instant t);

    abstract Instant time(ResultSet rs, String column) throws SQLException;

    /** The SQL for a JSON value bound to {@code param}. */
    abstract String json(String param);

    /** What locks a claimed row without waiting for rows other claimers hold. */
    abstract String skipLocked();

    static long micros(Instant t) {
        return ChronoUnit.MICROS.between(Instant.EPOCH, t);
    }

    /**
     * Whether {@code e} broke on a connection that was open (the server restarted or dropped it), so
     * that the same operation on another pooled connection may succeed. Failing to obtain a
     * connection is not such a case: the pool has waited its timeout already.
     */
    static boolean connectionLost(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ConnectionException) {
                return false;
            }
            if (t instanceof SQLException sql && sql.getSQLState() != null) {
                String state = sql.getSQLState();
                // 08: connection exceptions; 57P01-03: the server shut down or is starting.
                if (state.startsWith("08") || state.equals("57P01") || state.equals("57P02") || state.equals("57P03")) {
                    return true;
                }
            }
        }
        return false;
    }
}
