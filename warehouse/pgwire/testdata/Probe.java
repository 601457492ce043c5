// Probe connects to the wire server with the PostgreSQL JDBC driver
// (pgJDBC: the driver DBeaver and Metabase use) and prints, one fact a
// line, what their navigators and sync read: DatabaseMetaData's schemas,
// tables, columns, keys and indexes, then a prepared statement with
// string, int and timestamp parameters read back as timestamptz and
// numeric. Run as a single-file program:
//
//	java -cp postgresql.jar Probe.java jdbc:postgresql://host:port/citybrain user password [tables]
//
// ("tables": stop after listing the tables, for a department user.)
// Every failure is printed as "FAIL <step>: <message>" and the exit
// status is 1, so the Go test shows exactly which call broke.
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class Probe {
    static int failures = 0;

    interface Step {
        void run() throws Exception;
    }

    static void step(String name, Step s) {
        try {
            s.run();
        } catch (Exception e) {
            failures++;
            System.out.println("FAIL " + name + ": " + e);
            Throwable c = e.getCause();
            if (c != null) {
                System.out.println("  cause: " + c);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("ApplicationName", "citybrain-jdbc-probe");
        try (Connection conn = DriverManager.getConnection(args[0], props)) {
            DatabaseMetaData md = conn.getMetaData();
            System.out.println("product " + md.getDatabaseProductName() + " " + md.getDatabaseMajorVersion());
            step("getSchemas", () -> {
                List<String> names = new ArrayList<>();
                try (ResultSet rs = md.getSchemas()) {
                    while (rs.next()) {
                        names.add(rs.getString("TABLE_SCHEM"));
                    }
                }
                System.out.println("schemas " + names);
            });
            step("getCatalogs", () -> {
                try (ResultSet rs = md.getCatalogs()) {
                    while (rs.next()) {
                        System.out.println("catalog " + rs.getString("TABLE_CAT"));
                    }
                }
            });
            step("getTableTypes", () -> {
                List<String> types = new ArrayList<>();
                try (ResultSet rs = md.getTableTypes()) {
                    while (rs.next()) {
                        types.add(rs.getString(1));
                    }
                }
                System.out.println("tabletypes " + types.contains("TABLE"));
            });
            step("getTables", () -> {
                try (ResultSet rs = md.getTables(null, null, "%", new String[] {"TABLE", "VIEW"})) {
                    while (rs.next()) {
                        System.out.println("table " + rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME")
                                + " " + rs.getString("TABLE_TYPE") + " remarks=" + rs.getString("REMARKS"));
                    }
                }
            });
            if (args.length > 3 && args[3].equals("tables")) {
                // A department user: only what its navigator lists.
                System.out.println("failures " + failures);
                System.exit(failures == 0 ? 0 : 1);
            }
            for (String[] t : new String[][] {{"raw", "weather"}, {"marts", "warnings"}}) {
                String schema = t[0], table = t[1];
                step("getColumns " + schema + "." + table, () -> {
                    try (ResultSet rs = md.getColumns(null, schema, table, "%")) {
                        while (rs.next()) {
                            System.out.println("column " + schema + "." + table + "." + rs.getString("COLUMN_NAME")
                                    + " type=" + rs.getString("TYPE_NAME") + " sqltype=" + rs.getInt("DATA_TYPE")
                                    + " pos=" + rs.getInt("ORDINAL_POSITION")
                                    + " remarks=" + rs.getString("REMARKS"));
                        }
                    }
                });
                step("getPrimaryKeys " + table, () -> {
                    System.out.println("primarykeys " + table + " " + count(md.getPrimaryKeys(null, schema, table)));
                });
                step("getImportedKeys " + table, () -> {
                    System.out.println("importedkeys " + table + " " + count(md.getImportedKeys(null, schema, table)));
                });
                step("getExportedKeys " + table, () -> {
                    System.out.println("exportedkeys " + table + " " + count(md.getExportedKeys(null, schema, table)));
                });
                step("getIndexInfo " + table, () -> {
                    System.out.println("indexes " + table + " " + count(md.getIndexInfo(null, schema, table, false, true)));
                });
            }
            // DBeaver's navigator reads pg_catalog itself, with the
            // schema's or the table's oid as a parameter: the same kind
            // of statements, as it sends them.
            step("navigator", () -> navigator(conn));
            // Metabase's sync reads pg_catalog and information_schema with
            // statements of its own: tables with estimated rows, fields
            // with their PostgreSQL type names and comments, foreign keys,
            // enum types, the server's time zone.
            step("metabase", () -> metabase(conn));
            step("describe select", () -> {
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("select * from marts.warnings limit 0")) {
                    ResultSetMetaData m = rs.getMetaData();
                    StringBuilder sb = new StringBuilder("resultmeta");
                    for (int i = 1; i <= m.getColumnCount(); i++) {
                        sb.append(' ').append(m.getColumnName(i)).append(':').append(m.getColumnTypeName(i));
                    }
                    System.out.println(sb);
                }
            });
            // A prepared statement with string, int and timestamp
            // parameters, run past pgJDBC's prepareThreshold (5) so the
            // server-side named statement and binary transfer are used too.
            step("prepared", () -> {
                String q = "select station, observed_at, rain_mm, cast(rain_mm as decimal(6,2)) as rain_dec"
                        + " from raw.weather where station = ? and rain_mm > ? and observed_at >= ?"
                        + " order by observed_at limit 3";
                try (PreparedStatement ps = conn.prepareStatement(q)) {
                    for (int run = 1; run <= 7; run++) {
                        ps.setString(1, "station-1");
                        ps.setInt(2, 10);
                        ps.setTimestamp(3, Timestamp.from(Instant.parse("2026-11-28T12:00:00Z")));
                        List<String> rows = new ArrayList<>();
                        try (ResultSet rs = ps.executeQuery()) {
                            while (rs.next()) {
                                OffsetDateTime at = rs.getObject(2, OffsetDateTime.class);
                                BigDecimal dec = rs.getBigDecimal(4);
                                rows.add(rs.getString(1) + "@" + at.withOffsetSameInstant(ZoneOffset.ofHours(8)) + "=" + dec.toPlainString());
                            }
                        }
                        System.out.println("prepared run " + run + " " + rows);
                    }
                }
            });
            step("literals", () -> {
                try (PreparedStatement ps = conn.prepareStatement(
                        "select TIMESTAMPTZ '2026-11-28 02:00:00Z' as t, 12345.678::DECIMAL(10,3) as d, ? || '!' as s")) {
                    ps.setString(1, "北京");
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        System.out.println("literals " + rs.getObject(1, OffsetDateTime.class).toInstant() + " "
                                + rs.getBigDecimal(2).toPlainString() + " " + rs.getString(3));
                    }
                }
            });
            step("refused", () -> {
                try (Statement st = conn.createStatement()) {
                    st.execute("COPY raw.weather TO '/tmp/citybrain-jdbc.csv'");
                    System.out.println("refused none");
                } catch (SQLException e) {
                    System.out.println("refused " + e.getSQLState());
                }
            });
        }
        System.out.println("failures " + failures);
        System.exit(failures == 0 ? 0 : 1);
    }

    static void navigator(Connection conn) throws SQLException {
        long rawOid = 0;
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT n.oid, n.*, d.description FROM pg_catalog.pg_namespace n"
                        + " LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0"
                        + " AND d.classoid = 'pg_namespace'::regclass ORDER BY nspname")) {
            List<String> names = new ArrayList<>();
            while (rs.next()) {
                names.add(rs.getString("nspname"));
                if (rs.getString("nspname").equals("raw")) {
                    rawOid = rs.getLong("oid");
                }
            }
            System.out.println("navigator schemas " + names);
        }
        long weatherOid = 0;
        try (PreparedStatement ps = conn.prepareStatement("SELECT c.oid, c.*, d.description,"
                + " (SELECT array_agg(i.inhparent) FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) AS parents"
                + " FROM pg_catalog.pg_class c LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.objsubid = 0"
                + " WHERE c.relnamespace = ? AND c.relkind NOT IN ('i', 'c') ORDER BY c.relname")) {
            ps.setLong(1, rawOid);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    System.out.println("navigator table raw." + rs.getString("relname") + " kind=" + rs.getString("relkind")
                            + " description=" + rs.getString("description") + " parents=" + rs.getArray("parents"));
                    if (rs.getString("relname").equals("weather")) {
                        weatherOid = rs.getLong("oid");
                    }
                }
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT c.relname, a.*, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value,"
                + " dsc.description, t.typname FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON (a.attrelid = c.oid)"
                + " LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid = ad.adrelid AND a.attnum = ad.adnum)"
                + " LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid)"
                + " LEFT OUTER JOIN pg_catalog.pg_type t ON (t.oid = a.atttypid)"
                + " WHERE NOT a.attisdropped AND a.attrelid = ? AND c.relkind NOT IN ('i', 'c') ORDER BY a.attnum")) {
            ps.setLong(1, weatherOid);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    System.out.println("navigator column weather." + rs.getString("attname") + " typid=" + rs.getLong("atttypid")
                            + " typname=" + rs.getString("typname") + " description=" + rs.getString("description"));
                }
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT c.oid, c.*, t.relname AS tabrelname, rt.relnamespace AS refnamespace"
                + " FROM pg_catalog.pg_constraint c INNER JOIN pg_catalog.pg_class t ON t.oid = c.conrelid"
                + " LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid = c.confrelid WHERE t.relnamespace = ? ORDER BY c.oid")) {
            ps.setLong(1, rawOid);
            System.out.println("navigator constraints " + count(ps.executeQuery()));
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT i.*, i.indkey AS keys, c.relname, c.relnamespace, c.relam, tc.relname AS tabrelname,"
                + " dsc.description, pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) AS expr FROM pg_catalog.pg_index i"
                + " INNER JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid INNER JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid"
                + " LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid = dsc.objoid WHERE i.indrelid = ? ORDER BY c.relname")) {
            ps.setLong(1, weatherOid);
            System.out.println("navigator indexes " + count(ps.executeQuery()));
        }
    }

    static void metabase(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT n.nspname AS schema, c.relname AS name,"
                        + " CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' ELSE NULL END AS type,"
                        + " d.description AS description, stat.n_live_tup AS estimated_row_count"
                        + " FROM pg_catalog.pg_class AS c INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid"
                        + " LEFT JOIN pg_catalog.pg_description AS d ON (c.oid = d.objoid) AND (d.objsubid = 0) AND (d.classoid = 'pg_class'::regclass)"
                        + " LEFT JOIN pg_stat_user_tables AS stat ON (n.nspname = stat.schemaname) AND (c.relname = stat.relname)"
                        + " WHERE (c.relnamespace = n.oid) AND (n.nspname !~ '^pg_') AND (n.nspname <> 'information_schema')"
                        + " AND c.relkind IN ('r', 'p', 'v', 'f', 'm') AND (n.nspname IN ('raw', 'marts')) ORDER BY type, schema, name")) {
            while (rs.next()) {
                System.out.println("metabase table " + rs.getString("schema") + "." + rs.getString("name") + " " + rs.getString("type")
                        + " description=" + rs.getString("description"));
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT c.column_name AS name,"
                + " CASE WHEN c.udt_schema IN ('public', 'pg_catalog') THEN format('%s', c.udt_name) ELSE format('\"%s\".\"%s\"', c.udt_schema, c.udt_name) END AS dbtype,"
                + " c.ordinal_position - 1 AS position, pk.column_name IS NOT NULL AS is_pk,"
                + " col_description(CAST(CAST(format('%I.%I', CAST(c.table_schema AS TEXT), CAST(c.table_name AS TEXT)) AS REGCLASS) AS OID), c.ordinal_position) AS comment,"
                + " (c.column_default IS NULL OR lower(c.column_default) = 'null') AND c.is_nullable = 'NO'"
                + " AND NOT ((c.column_default IS NOT NULL AND c.column_default LIKE '%nextval(%') OR c.is_identity <> 'NO') AS required"
                + " FROM information_schema.columns AS c LEFT JOIN (SELECT tc.table_schema, tc.table_name, kc.column_name"
                + " FROM information_schema.table_constraints AS tc INNER JOIN information_schema.key_column_usage AS kc"
                + " ON (tc.constraint_name = kc.constraint_name) AND (tc.table_schema = kc.table_schema) AND (tc.table_name = kc.table_name)"
                + " WHERE tc.constraint_type = 'PRIMARY KEY') AS pk"
                + " ON (c.table_schema = pk.table_schema) AND (c.table_name = pk.table_name) AND (c.column_name = pk.column_name)"
                + " WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND c.table_schema IN (?) AND c.table_name IN (?)"
                + " ORDER BY c.table_schema, c.table_name, position")) {
            ps.setString(1, "marts");
            ps.setString(2, "warnings");
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    System.out.println("metabase field warnings." + rs.getString("name") + " type=" + rs.getString("dbtype")
                            + " position=" + rs.getInt("position") + " pk=" + rs.getBoolean("is_pk") + " required=" + rs.getBoolean("required")
                            + " comment=" + rs.getString("comment"));
                }
            }
        }
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT fk_ns.nspname AS fk_schema, fk_table.relname AS fk_table, fk_column.attname AS fk_column"
                        + " FROM pg_constraint AS c INNER JOIN pg_class AS fk_table ON c.conrelid = fk_table.oid"
                        + " INNER JOIN pg_namespace AS fk_ns ON c.connamespace = fk_ns.oid INNER JOIN pg_attribute AS fk_column ON c.conrelid = fk_column.attrelid"
                        + " INNER JOIN pg_class AS pk_table ON c.confrelid = pk_table.oid INNER JOIN pg_namespace AS pk_ns ON pk_table.relnamespace = pk_ns.oid"
                        + " INNER JOIN pg_attribute AS pk_column ON c.confrelid = pk_column.attrelid"
                        + " WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND (c.contype = 'f'::char)"
                        + " AND (fk_column.attnum = ANY(c.conkey)) AND (pk_column.attnum = ANY(c.confkey))")) {
            System.out.println("metabase fks " + count(rs));
        }
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                        + " WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)")) {
            System.out.println("metabase enums " + count(rs));
        }
        try (PreparedStatement ps = conn.prepareStatement("show timezone;"); ResultSet rs = ps.executeQuery()) {
            rs.next();
            System.out.println("metabase timezone " + rs.getString(1));
        }
    }

    static int count(ResultSet rs) throws SQLException {
        int n = 0;
        try (rs) {
            while (rs.next()) {
                n++;
            }
        }
        return n;
    }
}
