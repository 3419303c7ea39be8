// Real-client test: pgjdbc (DatabaseMetaData.getTables/getColumns, a PreparedStatement
// with a timestamp parameter, a transaction with autosave) against a running henge.
// Usage: java -cp /usr/share/java/postgresql.jar JdbcClient.java PORT
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

public class JdbcClient {
    static void check(String description, Object wanted, Object got) {
        if (!Objects.equals(wanted, got)) {
            System.out.println("FAIL: " + description + "\n  wanted: " + wanted + "\n  got:    " + got);
            System.exit(1);
        }
        System.out.println("ok: " + description);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/henge";
        // drivers.sh runs the server with SCRAM-SHA-256 logins: the password from the
        // environment.
        String password = System.getenv().getOrDefault("HENGE_TEST_PASSWORD", "");
        try (Connection conn = DriverManager.getConnection(url, "henge", password)) {
            DatabaseMetaData meta = conn.getMetaData();
            check("server version", 16, meta.getDatabaseMajorVersion());
            try (Statement st = conn.createStatement()) {
                st.execute("CREATE TABLE jdbc_events (ts TIMESTAMP NOT NULL, host VARCHAR(16) NOT NULL, "
                        + "load DOUBLE PRECISION, hits BIGINT) WITH (time_column = 'ts')");
            }
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "public", "jdbc%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
                }
            }
            check("DatabaseMetaData.getTables", List.of("public.jdbc_events"), tables);
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "public", "jdbc_events", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME") + " "
                            + rs.getInt("COLUMN_SIZE") + " " + rs.getString("IS_NULLABLE"));
                }
            }
            check("DatabaseMetaData.getColumns", List.of(
                    "ts timestamp 29 NO",
                    "host varchar 16 NO",
                    "load float8 17 YES",
                    "hits int8 19 YES"), columns);
            try (PreparedStatement insert = conn.prepareStatement("INSERT INTO jdbc_events VALUES (?, ?, ?, ?)")) {
                for (int i = 0; i < 5; i++) {
                    insert.setTimestamp(1, Timestamp.valueOf("2024-03-01 0" + i + ":00:00"));
                    insert.setString(2, "h" + (i % 2));
                    insert.setDouble(3, i * 0.5);
                    insert.setLong(4, i * 100L);
                    insert.executeUpdate();
                }
            }
            try (PreparedStatement query = conn.prepareStatement(
                    "SELECT host, count(*), sum(hits) FROM jdbc_events WHERE ts >= ? GROUP BY host ORDER BY host")) {
                query.setTimestamp(1, Timestamp.valueOf("2024-03-01 02:00:00"));
                List<String> rows = new ArrayList<>();
                try (ResultSet rs = query.executeQuery()) {
                    while (rs.next()) {
                        rows.add(rs.getString(1) + " " + rs.getLong(2) + " " + rs.getLong(3));
                    }
                }
                check("PreparedStatement with a timestamp parameter", List.of("h0 2 600", "h1 1 300"), rows);
            }
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(
                    "SELECT max(ts) FROM jdbc_events")) {
                rs.next();
                check("timestamps decode", Timestamp.valueOf("2024-03-01 04:00:00"), rs.getTimestamp(1));
            }
        }
        // pgjdbc's autosave: with autocommit off it sets a savepoint before each statement and
        // rolls back to it after an error, so the transaction goes on; rollback() discards.
        try (Connection conn = DriverManager.getConnection(url + "?autosave=always", "henge", password)) {
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.executeUpdate("INSERT INTO jdbc_events VALUES ('2024-03-02 00:00:00', 'tx', 1, 7)");
                try {
                    st.executeQuery("SELECT 1 / 0");
                    check("division by zero fails", "an error", "none");
                } catch (java.sql.SQLException e) {
                    check("the failing statement's SQLSTATE", "22012", e.getSQLState());
                }
                st.executeUpdate("INSERT INTO jdbc_events VALUES ('2024-03-02 01:00:00', 'tx', 1, 8)");
                conn.commit();
                st.executeUpdate("INSERT INTO jdbc_events VALUES ('2024-03-02 02:00:00', 'tx', 1, 1000)");
                conn.rollback();
                try (ResultSet rs = st.executeQuery("SELECT count(*), sum(hits) FROM jdbc_events WHERE host = 'tx'")) {
                    rs.next();
                    check("autosave recovers the transaction; rollback discards",
                            "2 15", rs.getLong(1) + " " + rs.getLong(2));
                }
            }
        }
        System.out.println("JDBC client tests passed");
    }
}
