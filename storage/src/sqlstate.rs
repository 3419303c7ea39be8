//! SQLSTATE: how every error Henge reports is classified for its clients, as PostgreSQL
//! classifies its own (the names are those of PostgreSQL's `errcodes.txt`). Each crate
//! gives its own error kinds their code where it defines them (`Error::sqlstate` here
//! and in `henge-ingest`, `SqlStateError` in the planner), so that the code a client sees
//! never depends on the wording of a message.
//!
//! A code knows its severity: the errors that end the connection (failed logins, too
//! many clients, idle timeouts) are FATAL, everything else ERROR; a protocol violation is
//! FATAL where it ends the connection ([`SqlState::fatal`]).

/// A SQLSTATE code and the severity it is reported at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState {
    code: &'static str,
    fatal: bool,
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl SqlState {
    /// The state of a five-character code, FATAL when errors of it end the connection.
    pub const fn new(code: &'static str) -> SqlState {
        let b = code.as_bytes();
        let fatal = (b.len() == 5 && b[0] == b'2' && b[1] == b'8')
            || same(b, b"53300")
            || same(b, b"25P03")
            || (b.len() == 5 && same(&[b[0], b[1], b[2], b[3]], b"57P0"));
        SqlState { code, fatal }
    }

    /// The same code, reported as FATAL: the connection ends with it.
    pub const fn fatal(self) -> SqlState {
        SqlState {
            code: self.code,
            fatal: true,
        }
    }

    /// The five characters.
    pub const fn code(self) -> &'static str {
        self.code
    }

    /// "FATAL" for errors that end the connection, "ERROR" otherwise.
    pub const fn severity(self) -> &'static str {
        if self.fatal {
            "FATAL"
        } else {
            "ERROR"
        }
    }

    pub const fn is_fatal(self) -> bool {
        self.fatal
    }
}

impl From<&'static str> for SqlState {
    fn from(code: &'static str) -> SqlState {
        SqlState::new(code)
    }
}

impl PartialEq<&str> for SqlState {
    fn eq(&self, other: &&str) -> bool {
        self.code == *other
    }
}

impl std::fmt::Display for SqlState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code)
    }
}

macro_rules! codes {
    ($($name:ident = $code:literal;)*) => {
        $(pub const $name: SqlState = SqlState::new($code);)*
        /// Every named code, for tests.
        pub const ALL: &[SqlState] = &[$($name),*];
    };
}

codes! {
    SUCCESSFUL_COMPLETION = "00000";
    WARNING = "01000";
    PRIVILEGE_NOT_REVOKED = "01006";
    PRIVILEGE_NOT_GRANTED = "01007";
    FEATURE_NOT_SUPPORTED = "0A000";
    PROTOCOL_VIOLATION = "08P01";
    CARDINALITY_VIOLATION = "21000";
    STRING_DATA_RIGHT_TRUNCATION = "22001";
    NUMERIC_VALUE_OUT_OF_RANGE = "22003";
    INVALID_DATETIME_FORMAT = "22007";
    DATETIME_FIELD_OVERFLOW = "22008";
    DIVISION_BY_ZERO = "22012";
    INTERVAL_FIELD_OVERFLOW = "22015";
    CHARACTER_NOT_IN_REPERTOIRE = "22021";
    INVALID_PARAMETER_VALUE = "22023";
    INVALID_ROW_COUNT_IN_LIMIT_CLAUSE = "2201W";
    INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE = "2201X";
    ARRAY_SUBSCRIPT_ERROR = "2202E";
    INVALID_TEXT_REPRESENTATION = "22P02";
    BAD_COPY_FILE_FORMAT = "22P04";
    UNTRANSLATABLE_CHARACTER = "22P05";
    NOT_NULL_VIOLATION = "23502";
    CHECK_VIOLATION = "23514";
    ACTIVE_SQL_TRANSACTION = "25001";
    READ_ONLY_SQL_TRANSACTION = "25006";
    NO_ACTIVE_SQL_TRANSACTION = "25P01";
    IN_FAILED_SQL_TRANSACTION = "25P02";
    IDLE_IN_TRANSACTION_SESSION_TIMEOUT = "25P03";
    INVALID_AUTHORIZATION_SPECIFICATION = "28000";
    SERIALIZATION_FAILURE = "40001";
    INVALID_PASSWORD = "28P01";
    DEPENDENT_OBJECTS_STILL_EXIST = "2BP01";
    INVALID_CURSOR_NAME = "34000";
    INVALID_SAVEPOINT_SPECIFICATION = "3B001";
    SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION = "42000";
    INSUFFICIENT_PRIVILEGE = "42501";
    SYNTAX_ERROR = "42601";
    DUPLICATE_COLUMN = "42701";
    AMBIGUOUS_COLUMN = "42702";
    UNDEFINED_COLUMN = "42703";
    UNDEFINED_OBJECT = "42704";
    DATATYPE_MISMATCH = "42804";
    WRONG_OBJECT_TYPE = "42809";
    UNDEFINED_FUNCTION = "42883";
    UNDEFINED_TABLE = "42P01";
    DUPLICATE_TABLE = "42P07";
    DUPLICATE_OBJECT = "42710";
    INVALID_TABLE_DEFINITION = "42P16";
    INVALID_COLUMN_REFERENCE = "42P10";
    INVALID_RECURSION = "42P17";
    RESERVED_NAME = "42939";
    OUT_OF_MEMORY = "53200";
    TOO_MANY_CONNECTIONS = "53300";
    PROGRAM_LIMIT_EXCEEDED = "54000";
    STATEMENT_TOO_COMPLEX = "54001";
    CANT_CHANGE_RUNTIME_PARAM = "55P02";
    QUERY_CANCELED = "57014";
    IDLE_SESSION_TIMEOUT = "57P05";
    IO_ERROR = "58030";
    INTERNAL_ERROR = "XX000";
    DATA_CORRUPTED = "XX001";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_that_end_the_connection_are_fatal() {
        let fatal: Vec<&str> = ALL
            .iter()
            .filter(|s| s.is_fatal())
            .map(|s| s.code())
            .collect();
        assert_eq!(fatal, ["25P03", "28000", "28P01", "53300", "57P05"]);
        assert_eq!(PROTOCOL_VIOLATION.severity(), "ERROR");
        assert_eq!(PROTOCOL_VIOLATION.fatal().severity(), "FATAL");
        assert!(ALL.iter().all(|s| s.code().len() == 5));
        assert_eq!(SqlState::from("42501"), INSUFFICIENT_PRIVILEGE);
    }
}
