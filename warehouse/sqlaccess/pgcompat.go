package sqlaccess

// pgCompat is what PostgreSQL clients' catalog queries need beyond
// DuckDB's own pg_catalog: psql's \dt lists relkind 'r' (the lake's
// tables are views here), and \d, DBeaver and SQLAlchemy read catalogs
// DuckDB does not have (empty here: no inheritance, policies, triggers,
// publications). The wire server rewrites pg_catalog.<these> to
// pgcompat.<these>; they live in every sandbox database.
var pgCompat = []string{
	"CREATE SCHEMA pgcompat",
	// Stable relation oids: a lake table's view is created anew at every
	// commit it follows (and catalog.* at every rebuild), and DuckDB gives
	// the new one a new oid — psql's \d looks a relation up by name, then
	// reads its columns by oid, and found none when a commit fell between.
	// So the catalogs show an oid made of the relation's name (pg_oid), and
	// map it back to DuckDB's where they look DuckDB up (duck_oid).
	`CREATE VIEW pgcompat.rel_oids AS
		SELECT view_oid::BIGINT AS duck, (16384 + hash(schema_name || '.' || view_name) % 2000000000)::BIGINT AS pg FROM duckdb_views()
			WHERE schema_name NOT IN ('main', 'pgcompat', 'pg_catalog', 'information_schema')
		UNION ALL SELECT table_oid::BIGINT, (16384 + hash(schema_name || '.' || table_name) % 2000000000)::BIGINT FROM duckdb_tables()
			WHERE schema_name NOT IN ('main', 'pgcompat', 'pg_catalog', 'information_schema')`,
	`CREATE MACRO pgcompat.pg_oid(o) AS coalesce((SELECT r.pg FROM pgcompat.rel_oids r WHERE r.duck = o), o)::BIGINT`,
	`CREATE MACRO pgcompat.duck_oid(o) AS coalesce((SELECT r.duck FROM pgcompat.rel_oids r WHERE r.pg = o), o)::BIGINT`,
	`CREATE VIEW pgcompat.pg_class AS SELECT * REPLACE (pgcompat.pg_oid(oid) AS oid, CASE WHEN relkind = 'v' AND relnamespace IN
		(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname NOT IN ('main', 'pg_catalog', 'information_schema', 'pgcompat'))
		THEN 'r' ELSE relkind END AS relkind, NULL::VARCHAR[] AS reloptions, NULL::VARCHAR[] AS relacl, 'd' AS relreplident, NULL::INTEGER AS relam),
		false AS relforcerowsecurity FROM pg_catalog.pg_class
		WHERE relnamespace NOT IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pgcompat')`,
	`CREATE VIEW pgcompat.pg_database AS SELECT 1::BIGINT AS oid, 'citybrain' AS datname, 10::BIGINT AS datdba, 6 AS encoding, 'C.UTF-8' AS datcollate,
		'C.UTF-8' AS datctype, NULL::VARCHAR AS daticulocale, 'c' AS datlocprovider, NULL::VARCHAR[] AS datacl, false AS datistemplate,
		true AS datallowconn, -1 AS datconnlimit, 0::BIGINT AS dattablespace`,
	`CREATE VIEW pgcompat.pg_inherits AS SELECT NULL::BIGINT AS inhrelid, NULL::BIGINT AS inhparent, NULL::INTEGER AS inhseqno, false AS inhdetachpending WHERE false`,
	`CREATE VIEW pgcompat.pg_policy AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS polname, NULL::BIGINT AS polrelid, NULL::VARCHAR AS polcmd,
		NULL::BOOLEAN AS polpermissive, NULL::BIGINT[] AS polroles, NULL::VARCHAR AS polqual, NULL::VARCHAR AS polwithcheck WHERE false`,
	`CREATE VIEW pgcompat.pg_statistic_ext AS SELECT NULL::BIGINT AS oid, NULL::BIGINT AS stxrelid, NULL::VARCHAR AS stxname, NULL::BIGINT AS stxnamespace,
		NULL::BIGINT AS stxowner, NULL::INTEGER AS stxstattarget, NULL::INTEGER[] AS stxkeys, NULL::VARCHAR[] AS stxkind, NULL::VARCHAR AS stxexprs WHERE false`,
	`CREATE VIEW pgcompat.pg_publication AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS pubname, NULL::BIGINT AS pubowner, false AS puballtables,
		false AS pubinsert, false AS pubupdate, false AS pubdelete, false AS pubtruncate, false AS pubviaroot WHERE false`,
	`CREATE VIEW pgcompat.pg_publication_rel AS SELECT NULL::BIGINT AS oid, NULL::BIGINT AS prpubid, NULL::BIGINT AS prrelid, NULL::VARCHAR AS prqual, NULL::INTEGER[] AS prattrs WHERE false`,
	`CREATE VIEW pgcompat.pg_publication_namespace AS SELECT NULL::BIGINT AS oid, NULL::BIGINT AS pnpubid, NULL::BIGINT AS pnnspid WHERE false`,
	`CREATE VIEW pgcompat.pg_trigger AS SELECT NULL::BIGINT AS oid, NULL::BIGINT AS tgrelid, NULL::BIGINT AS tgparentid, NULL::VARCHAR AS tgname,
		NULL::VARCHAR AS tgenabled, false AS tgisinternal, NULL::BIGINT AS tgconstraint WHERE false`,
	`CREATE VIEW pgcompat.pg_rewrite AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS rulename, NULL::BIGINT AS ev_class, NULL::VARCHAR AS ev_type,
		NULL::VARCHAR AS ev_enabled, false AS is_instead WHERE false`,
	`CREATE VIEW pgcompat.pg_foreign_table AS SELECT NULL::BIGINT AS ftrelid, NULL::BIGINT AS ftserver, NULL::VARCHAR[] AS ftoptions WHERE false`,
	`CREATE VIEW pgcompat.pg_partitioned_table AS SELECT NULL::BIGINT AS partrelid, NULL::VARCHAR AS partstrat, NULL::INTEGER AS partnatts WHERE false`,
	`CREATE VIEW pgcompat.pg_roles AS SELECT 10::BIGINT AS oid, 'citybrain' AS rolname, false AS rolsuper, false AS rolinherit, false AS rolcreaterole,
		false AS rolcreatedb, true AS rolcanlogin, false AS rolreplication, -1 AS rolconnlimit, NULL::TIMESTAMPTZ AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig`,
	`CREATE VIEW pgcompat.pg_user AS SELECT 'citybrain' AS usename, 10::BIGINT AS usesysid, false AS usecreatedb, false AS usesuper`,
	`CREATE VIEW pgcompat.pg_auth_members AS SELECT NULL::BIGINT AS roleid, NULL::BIGINT AS member, NULL::BIGINT AS grantor, false AS admin_option WHERE false`,
	`CREATE VIEW pgcompat.pg_event_trigger AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS evtname WHERE false`,
	`CREATE VIEW pgcompat.pg_extension AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS extname, NULL::BIGINT AS extnamespace, NULL::VARCHAR AS extversion WHERE false`,
	`CREATE VIEW pgcompat.pg_foreign_server AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS srvname WHERE false`,
	`CREATE VIEW pgcompat.pg_foreign_data_wrapper AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS fdwname WHERE false`,
	`CREATE VIEW pgcompat.pg_range AS SELECT NULL::BIGINT AS rngtypid, NULL::BIGINT AS rngsubtype WHERE false`,
	`CREATE VIEW pgcompat.pg_matviews AS SELECT NULL::VARCHAR AS schemaname, NULL::VARCHAR AS matviewname WHERE false`,
	`CREATE VIEW pgcompat.pg_collation AS SELECT NULL::BIGINT AS oid, NULL::VARCHAR AS collname, NULL::BIGINT AS collnamespace, NULL::VARCHAR AS collprovider WHERE false`,
	`CREATE VIEW pgcompat.pg_stat_activity AS SELECT NULL::BIGINT AS pid, NULL::VARCHAR AS usename, NULL::VARCHAR AS query WHERE false`,
	// Types: PostgreSQL's OIDs and names, the ones the wire server
	// announces in RowDescription (warehouse/pgwire mapType), so a
	// column's pg_attribute.atttypid, its pg_type row and the OID of the
	// same column in a result agree. DuckDB's own pg_attribute carries
	// DuckDB's type ids, which match neither pg_type nor the wire.
	`CREATE MACRO pgcompat.scalar_oid(t) AS CASE
		WHEN t = 'BOOLEAN' THEN 16
		WHEN t IN ('TINYINT', 'SMALLINT', 'UTINYINT') THEN 21
		WHEN t IN ('INTEGER', 'USMALLINT') THEN 23
		WHEN t IN ('BIGINT', 'UINTEGER') THEN 20
		WHEN t IN ('UBIGINT', 'HUGEINT', 'UHUGEINT', 'BIGNUM') OR t LIKE 'DECIMAL%' THEN 1700
		WHEN t = 'FLOAT' THEN 700
		WHEN t = 'DOUBLE' THEN 701
		WHEN t = 'BLOB' THEN 17
		WHEN t = 'DATE' THEN 1082
		WHEN t = 'TIME' THEN 1083
		WHEN t = 'TIME WITH TIME ZONE' THEN 1266
		WHEN t IN ('TIMESTAMP', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS') THEN 1114
		WHEN t = 'TIMESTAMP WITH TIME ZONE' THEN 1184
		WHEN t = 'INTERVAL' THEN 1186
		WHEN t = 'UUID' THEN 2950
		WHEN t = 'JSON' OR t LIKE 'STRUCT%' OR t LIKE 'MAP%' OR t LIKE 'UNION%' THEN 114
		ELSE 25 END`,
	`CREATE MACRO pgcompat.type_oid(t) AS CASE WHEN t IS NULL THEN NULL
		WHEN regexp_matches(t, '\[\d*\]$') THEN CASE pgcompat.scalar_oid(regexp_replace(t, '\[\d*\]$', ''))
			WHEN 16 THEN 1000 WHEN 21 THEN 1005 WHEN 23 THEN 1007 WHEN 25 THEN 1009 WHEN 20 THEN 1016 WHEN 700 THEN 1021
			WHEN 701 THEN 1022 WHEN 1082 THEN 1182 WHEN 1114 THEN 1115 WHEN 1184 THEN 1185 WHEN 1700 THEN 1231 ELSE 25 END
		ELSE pgcompat.scalar_oid(t) END::BIGINT`,
	`CREATE VIEW pgcompat.pg_type AS SELECT oid::BIGINT AS oid, typname, 11::BIGINT AS typnamespace, 10 AS typowner, typlen::BIGINT AS typlen,
		typlen > 0 AS typbyval, 'b' AS typtype, typcategory, false AS typispreferred, true AS typisdefined, ',' AS typdelim, 0 AS typrelid,
		0 AS typsubscript, typelem, typarray, CASE WHEN typelem <> 0 THEN 'array_in' ELSE typname || 'in' END AS typinput,
		typname || 'out' AS typoutput, typname || 'recv' AS typreceive, typname || 'send' AS typsend, 0 AS typmodin, 0 AS typmodout, 0 AS typanalyze,
		CASE WHEN typlen = 8 THEN 'd' WHEN typlen = 2 THEN 's' WHEN typlen = 1 THEN 'c' ELSE 'i' END AS typalign,
		CASE WHEN typlen > 0 THEN 'p' ELSE 'x' END AS typstorage, false AS typnotnull, 0::BIGINT AS typbasetype, -1 AS typtypmod, 0 AS typndims,
		CASE WHEN typcategory = 'S' THEN 100 ELSE 0 END::BIGINT AS typcollation, NULL::VARCHAR AS typdefaultbin, NULL::VARCHAR AS typdefault, NULL::VARCHAR[] AS typacl
		FROM (VALUES (16, 'bool', 1, 'B', 0, 1000), (17, 'bytea', -1, 'U', 0, 1001), (20, 'int8', 8, 'N', 0, 1016), (21, 'int2', 2, 'N', 0, 1005),
			(23, 'int4', 4, 'N', 0, 1007), (25, 'text', -1, 'S', 0, 1009), (26, 'oid', 4, 'N', 0, 1028), (114, 'json', -1, 'U', 0, 199),
			(700, 'float4', 4, 'N', 0, 1021), (701, 'float8', 8, 'N', 0, 1022), (1043, 'varchar', -1, 'S', 0, 1015), (1082, 'date', 4, 'D', 0, 1182),
			(1083, 'time', 8, 'D', 0, 1183), (1114, 'timestamp', 8, 'D', 0, 1115), (1184, 'timestamptz', 8, 'D', 0, 1185),
			(1186, 'interval', 16, 'T', 0, 1187), (1266, 'timetz', 12, 'D', 0, 1270), (1700, 'numeric', -1, 'N', 0, 1231), (2950, 'uuid', 16, 'U', 0, 2951),
			(1000, '_bool', -1, 'A', 16, 0), (1001, '_bytea', -1, 'A', 17, 0), (1005, '_int2', -1, 'A', 21, 0), (1007, '_int4', -1, 'A', 23, 0),
			(1009, '_text', -1, 'A', 25, 0), (1015, '_varchar', -1, 'A', 1043, 0), (1016, '_int8', -1, 'A', 20, 0), (1021, '_float4', -1, 'A', 700, 0),
			(1022, '_float8', -1, 'A', 701, 0), (1028, '_oid', -1, 'A', 26, 0), (199, '_json', -1, 'A', 114, 0), (1182, '_date', -1, 'A', 1082, 0),
			(1183, '_time', -1, 'A', 1083, 0), (1115, '_timestamp', -1, 'A', 1114, 0), (1185, '_timestamptz', -1, 'A', 1184, 0),
			(1187, '_interval', -1, 'A', 1186, 0), (1270, '_timetz', -1, 'A', 1266, 0), (1231, '_numeric', -1, 'A', 1700, 0), (2951, '_uuid', -1, 'A', 2950, 0))
			AS t(oid, typname, typlen, typcategory, typelem, typarray)`,
	`CREATE VIEW pgcompat.pg_attribute AS SELECT a.* REPLACE (pgcompat.pg_oid(a.attrelid) AS attrelid, pgcompat.type_oid(c.data_type) AS atttypid,
		CASE WHEN c.data_type LIKE 'DECIMAL(%' THEN (c.numeric_precision * 65536 + c.numeric_scale + 4)::INTEGER ELSE -1 END AS atttypmod,
		coalesce((SELECT t.typlen FROM pgcompat.pg_type t WHERE t.oid = pgcompat.type_oid(c.data_type)), -1)::INTEGER AS attlen,
		CASE WHEN regexp_matches(c.data_type, '\[\d*\]$') THEN 1 ELSE 0 END AS attndims,
		CASE WHEN pgcompat.type_oid(c.data_type) IN (25, 1043) THEN 100 ELSE 0 END AS attcollation,
		CASE WHEN coalesce((SELECT t.typlen FROM pgcompat.pg_type t WHERE t.oid = pgcompat.type_oid(c.data_type)), -1) > 0 THEN 'p' ELSE 'x' END AS attstorage,
		-1 AS attstattarget, '' AS attcompression)
		FROM pg_catalog.pg_attribute a LEFT JOIN duckdb_columns() c ON c.table_oid = a.attrelid AND c.column_index = a.attnum`,
	`CREATE MACRO main.format_type(id, typmod) AS CASE id::BIGINT
		WHEN 16 THEN 'boolean' WHEN 17 THEN 'bytea' WHEN 20 THEN 'bigint' WHEN 21 THEN 'smallint' WHEN 23 THEN 'integer' WHEN 25 THEN 'text'
		WHEN 26 THEN 'oid' WHEN 114 THEN 'json' WHEN 700 THEN 'real' WHEN 701 THEN 'double precision' WHEN 1043 THEN 'character varying'
		WHEN 1082 THEN 'date' WHEN 1083 THEN 'time without time zone' WHEN 1114 THEN 'timestamp without time zone'
		WHEN 1184 THEN 'timestamp with time zone' WHEN 1186 THEN 'interval' WHEN 1266 THEN 'time with time zone' WHEN 2950 THEN 'uuid'
		WHEN 1700 THEN CASE WHEN typmod >= 4 THEN printf('numeric(%d,%d)', (typmod - 4) // 65536, (typmod - 4) % 65536) ELSE 'numeric' END
		WHEN 1000 THEN 'boolean[]' WHEN 1001 THEN 'bytea[]' WHEN 1005 THEN 'smallint[]' WHEN 1007 THEN 'integer[]' WHEN 1009 THEN 'text[]'
		WHEN 1015 THEN 'character varying[]' WHEN 1016 THEN 'bigint[]' WHEN 1021 THEN 'real[]' WHEN 1022 THEN 'double precision[]'
		WHEN 1028 THEN 'oid[]' WHEN 199 THEN 'json[]' WHEN 1182 THEN 'date[]' WHEN 1183 THEN 'time without time zone[]'
		WHEN 1115 THEN 'timestamp without time zone[]' WHEN 1185 THEN 'timestamp with time zone[]' WHEN 1187 THEN 'interval[]'
		WHEN 1270 THEN 'time with time zone[]' WHEN 1231 THEN 'numeric[]' WHEN 2951 THEN 'uuid[]'
		ELSE '???' END`,
	// Schemas: the lake's, plus pg_catalog (where the types live); not
	// DuckDB's empty main nor this compatibility schema.
	`CREATE VIEW pgcompat.pg_namespace AS SELECT oid::BIGINT AS oid, nspname, 10::BIGINT AS nspowner, NULL::VARCHAR[] AS nspacl FROM pg_catalog.pg_namespace
		WHERE nspname NOT IN ('main', 'pgcompat', 'pg_catalog', 'information_schema')
		UNION ALL SELECT 11, 'pg_catalog', 10, NULL`,
	// Descriptions: every comment here is on a relation or its columns
	// (classoid pg_class, 1259 as in PostgreSQL; DuckDB puts the
	// database's oid there).
	`CREATE VIEW pgcompat.pg_description AS SELECT pgcompat.pg_oid(objoid) AS objoid, 1259::BIGINT AS classoid, objsubid, description FROM pg_catalog.pg_description`,
	// Indexes, operator classes: the lake has none; empty, with the
	// columns clients read.
	`CREATE VIEW pgcompat.pg_index AS SELECT NULL::BIGINT AS indexrelid, NULL::BIGINT AS indrelid, NULL::INTEGER AS indnatts, NULL::INTEGER AS indnkeyatts,
		NULL::BOOLEAN AS indisunique, NULL::BOOLEAN AS indnullsnotdistinct, NULL::BOOLEAN AS indisprimary, NULL::BOOLEAN AS indisexclusion,
		NULL::BOOLEAN AS indimmediate, NULL::BOOLEAN AS indisclustered, NULL::BOOLEAN AS indisvalid, NULL::BOOLEAN AS indcheckxmin,
		NULL::BOOLEAN AS indisready, NULL::BOOLEAN AS indislive, NULL::BOOLEAN AS indisreplident, NULL::INTEGER[] AS indkey,
		NULL::BIGINT[] AS indcollation, NULL::BIGINT[] AS indclass, NULL::INTEGER[] AS indoption, NULL::VARCHAR AS indexprs, NULL::VARCHAR AS indpred WHERE false`,
	`CREATE VIEW pgcompat.pg_opclass AS SELECT NULL::BIGINT AS oid, NULL::BIGINT AS opcmethod, NULL::VARCHAR AS opcname, NULL::BIGINT AS opcnamespace,
		NULL::BIGINT AS opcowner, NULL::BIGINT AS opcfamily, NULL::BIGINT AS opcintype, NULL::BOOLEAN AS opcdefault, NULL::BIGINT AS opckeytype WHERE false`,
	// Settings clients read (pgJDBC: max_index_keys); not DuckDB's own,
	// which would show the sandbox's directories.
	`CREATE VIEW pgcompat.pg_settings AS SELECT name, setting, NULL::VARCHAR AS unit, 'Preset Options' AS category, '' AS short_desc, NULL::VARCHAR AS extra_desc,
		'internal' AS context, vartype, 'default' AS source, NULL::VARCHAR AS min_val, NULL::VARCHAR AS max_val, NULL::VARCHAR[] AS enumvals,
		setting AS boot_val, setting AS reset_val, NULL::VARCHAR AS sourcefile, NULL::INTEGER AS sourceline, false AS pending_restart
		FROM (VALUES ('max_index_keys', '32', 'integer'), ('max_identifier_length', '63', 'integer'), ('server_version', '15.0', 'string'),
			('server_version_num', '150000', 'integer'), ('server_encoding', 'UTF8', 'string'), ('client_encoding', 'UTF8', 'string'),
			('standard_conforming_strings', 'on', 'bool'), ('integer_datetimes', 'on', 'bool'), ('TimeZone', 'Asia/Shanghai', 'string'),
			('DateStyle', 'ISO, YMD', 'string'), ('default_transaction_read_only', 'on', 'bool'), ('transaction_read_only', 'on', 'bool'),
			('max_connections', '100', 'integer'), ('block_size', '8192', 'integer'), ('default_table_access_method', 'heap', 'string'),
			('search_path', 'raw, marts, catalog', 'string'), ('lc_collate', 'C.UTF-8', 'string'), ('lc_ctype', 'C.UTF-8', 'string'),
			('application_name', '', 'string')) AS s(name, setting, vartype)`,
	`CREATE MACRO main.pg_setting(n) AS (SELECT setting FROM pgcompat.pg_settings WHERE lower(name) = lower(CAST(n AS VARCHAR))),
		(n, missing_ok) AS (SELECT setting FROM pgcompat.pg_settings WHERE lower(name) = lower(CAST(n AS VARCHAR)))`,
	// A relation named by a string ('pg_catalog.pg_class'::regclass,
	// CAST($1 AS REGCLASS)): the catalogs' PostgreSQL OIDs, else the
	// relation's oid.
	// (The wire server's rewrite may have turned a literal
	// 'pg_catalog.pg_class' into 'pgcompat.pg_class'.)
	`CREATE MACRO main.regclass_oid(x) AS coalesce(CASE WHEN regexp_full_match(CAST(x AS VARCHAR), '\d+') THEN CAST(x AS BIGINT) END,
		CASE regexp_replace(CAST(x AS VARCHAR), '^"?(pg_catalog|pgcompat)"?\.', '')
		WHEN 'pg_class' THEN 1259 WHEN 'pg_type' THEN 1247 WHEN 'pg_proc' THEN 1255 WHEN 'pg_attribute' THEN 1249 WHEN 'pg_namespace' THEN 2615
		WHEN 'pg_constraint' THEN 2606 WHEN 'pg_index' THEN 2610 WHEN 'pg_description' THEN 2609 WHEN 'pg_database' THEN 1262
		WHEN 'pg_trigger' THEN 2620 WHEN 'pg_rewrite' THEN 2618 WHEN 'pg_am' THEN 2601 WHEN 'pg_attrdef' THEN 2604 WHEN 'pg_opclass' THEN 2616
		WHEN 'pg_operator' THEN 2617 WHEN 'pg_collation' THEN 3456 WHEN 'pg_extension' THEN 3079 WHEN 'pg_policy' THEN 3256 END,
		(SELECT pgcompat.pg_oid(c.oid) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relname = replace(regexp_replace(CAST(x AS VARCHAR), '^.*\.', ''), '"', '')
			AND (NOT contains(CAST(x AS VARCHAR), '.') OR n.nspname = replace(split_part(CAST(x AS VARCHAR), '.', 1), '"', '')) LIMIT 1))::BIGINT`,
	// information_schema._pg_expandarray: an array's elements with their
	// positions, one row each (pgJDBC's key and index queries).
	`CREATE MACRO main._pg_expandarray(arr) AS unnest(list_transform(generate_series(1, len(arr)), i -> {'x': arr[i], 'n': i}))`,
	`CREATE MACRO main.pg_get_indexdef(id) AS NULL::VARCHAR, (id, col, pretty) AS NULL::VARCHAR`,
	`CREATE MACRO main.current_schemas(implicit) AS ['raw', 'marts', 'catalog']`,
	// Metabase's sync: estimated rows (unknown here), and
	// information_schema with PostgreSQL's type names.
	`CREATE VIEW pgcompat.pg_stat_user_tables AS SELECT pgcompat.pg_oid(c.oid) AS relid, n.nspname AS schemaname, c.relname, NULL::BIGINT AS n_live_tup,
		NULL::BIGINT AS n_dead_tup, NULL::BIGINT AS seq_scan, NULL::BIGINT AS idx_scan FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('main', 'pgcompat', 'pg_catalog', 'information_schema')`,
	`CREATE VIEW pgcompat.information_schema_columns AS SELECT c.* REPLACE ('citybrain' AS table_catalog,
		main.format_type(pgcompat.type_oid(c.data_type), CASE WHEN c.data_type LIKE 'DECIMAL(%' THEN c.numeric_precision * 65536 + c.numeric_scale + 4 ELSE -1 END) AS data_type,
		'citybrain' AS udt_catalog, 'pg_catalog' AS udt_schema,
		(SELECT t.typname FROM pgcompat.pg_type t WHERE t.oid = pgcompat.type_oid(c.data_type)) AS udt_name,
		CASE WHEN c.is_identity THEN 'YES' ELSE 'NO' END AS is_identity)
		FROM information_schema.columns c WHERE c.table_schema NOT IN ('main', 'pgcompat')`,
	`CREATE VIEW pgcompat.information_schema_tables AS SELECT t.* REPLACE ('citybrain' AS table_catalog,
		CASE WHEN t.table_type = 'VIEW' AND t.table_schema NOT IN ('information_schema', 'pg_catalog') THEN 'BASE TABLE' ELSE t.table_type END AS table_type)
		FROM information_schema.tables t WHERE t.table_schema NOT IN ('main', 'pgcompat')`,
	`CREATE MACRO main.pg_get_userbyid(id) AS 'citybrain'`,
	// A view's SQL names the lake's files and the department's row filter:
	// clients (psql \d+) get this line instead.
	`CREATE MACRO main.pg_get_viewdef(id) AS '-- 视图定义不公开 view definition not shown', (id, pretty) AS '-- 视图定义不公开 view definition not shown'`,
	`CREATE MACRO main.col_description(rel, num) AS (SELECT comment FROM duckdb_columns() WHERE table_oid = pgcompat.duck_oid(rel) AND column_index = num LIMIT 1)`,
	`CREATE MACRO main.obj_description(id) AS (SELECT comment FROM (SELECT view_oid AS o, comment FROM duckdb_views() UNION ALL SELECT table_oid, comment FROM duckdb_tables()) WHERE o = pgcompat.duck_oid(id) LIMIT 1),
		(id, cat) AS (SELECT comment FROM (SELECT view_oid AS o, comment FROM duckdb_views() UNION ALL SELECT table_oid, comment FROM duckdb_tables()) WHERE o = pgcompat.duck_oid(id) LIMIT 1)`,
	`CREATE MACRO main.pg_get_expr(expr, rel) AS NULL::VARCHAR, (expr, rel, pretty) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_get_statisticsobjdef_columns(id) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_relation_is_publishable(id) AS false`,
	`CREATE MACRO main.pg_get_serial_sequence(t, c) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_collation_is_visible(id) AS true`,
	`CREATE MACRO main.pg_type_is_visible(id) AS true`,
	`CREATE MACRO main.to_regtype(n) AS (SELECT oid FROM pg_catalog.pg_type WHERE typname = n LIMIT 1)`,
	`CREATE MACRO main.to_regclass(n) AS (SELECT pgcompat.pg_oid(oid) FROM pg_catalog.pg_class WHERE relname = n LIMIT 1)`,
	`CREATE MACRO main.array_upper(arr, dim) AS len(arr)`,
	`CREATE MACRO main.array_lower(arr, dim) AS CASE WHEN len(arr) > 0 THEN 1 END`,
	`CREATE MACRO main.pg_get_triggerdef(id) AS NULL::VARCHAR, (id, pretty) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_get_ruledef(id) AS NULL::VARCHAR, (id, pretty) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_get_partkeydef(id) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_get_partition_constraintdef(id) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_encoding_to_char(id) AS 'UTF8'`,
	`CREATE MACRO main.pg_tablespace_location(id) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_relation_size(id) AS 0::BIGINT, (id, fork) AS 0::BIGINT`,
	`CREATE MACRO main.pg_total_relation_size(id) AS 0::BIGINT`,
	`CREATE MACRO main.pg_table_size(id) AS 0::BIGINT`,
	`CREATE MACRO main.shobj_description(id, cat) AS NULL::VARCHAR`,
	`CREATE MACRO main.pg_get_function_identity_arguments(id) AS ''`,
	`CREATE MACRO main.pg_get_function_result(id) AS ''`,
	`CREATE MACRO main.pg_get_function_arguments(id) AS ''`,
	`CREATE MACRO main.pg_backend_pid() AS 0`,
	`CREATE MACRO main.pg_is_in_recovery() AS false`,
	`CREATE MACRO main.pg_postmaster_start_time() AS NULL::TIMESTAMPTZ`,
	`CREATE MACRO main.txid_current() AS 0::BIGINT`,
}
