# Escape attempts: each must be refused by the SQL sandbox with SQLSTATE
# 42501 and a message in Chinese and English. One statement per line;
# ${TMP} is a fresh directory that must stay empty, ${LAKE} the lake.
COPY raw.weather TO '${TMP}/weather.csv'
COPY (SELECT 1) TO '${TMP}/one.parquet' (FORMAT parquet)
/* hidden */ COPY raw.weather TO '${TMP}/c.csv'
EXPORT DATABASE '${TMP}/dump'
IMPORT DATABASE '${TMP}/dump'
ATTACH '${TMP}/evil.duckdb' AS evil
ATTACH ':memory:' AS mem2
DETACH memory
USE system
INSTALL httpfs
FORCE INSTALL httpfs
LOAD httpfs
LOAD '${TMP}/evil.duckdb_extension'
SET enable_external_access = true
SET allowed_directories = ['/']
SET GLOBAL lock_configuration = false
SET GLOBAL threads = 64
RESET memory_limit
PRAGMA enable_profiling
PRAGMA database_list
CALL pragma_version()
CREATE TABLE stolen AS SELECT * FROM raw.weather
CREATE MACRO evil() AS 1
CREATE SECRET (TYPE s3, KEY_ID 'x', SECRET 'y')
INSERT INTO catalog.tables (table_name) VALUES ('x')
DELETE FROM catalog.columns
DROP VIEW raw.weather
ALTER VIEW raw.weather RENAME TO w2
PREPARE p AS SELECT 1
CHECKPOINT
SELECT * FROM read_csv('/etc/passwd')
SELECT * FROM read_csv_auto('/etc/passwd')
SELECT * FROM read_text('/etc/passwd')
SELECT * FROM read_blob('/etc/hostname')
SELECT * FROM read_json_auto('/etc/os-release')
SELECT * FROM read_parquet('${LAKE}/raw/mobile_signal/data/**/*.parquet')
SELECT * FROM '/etc/passwd'
SELECT * FROM "/etc/passwd"
SELECT * FROM '${LAKE}/raw/mobile_signal/data/**/*.parquet'
SELECT * FROM glob('/etc/*')
SELECT * FROM sniff_csv('/etc/passwd')
SELECT * FROM parquet_metadata('${LAKE}/raw/weather/data/x.parquet')
SELECT * FROM iceberg_scan('${LAKE}/raw/weather')
SELECT * FROM postgres_scan('host=127.0.0.1', 'public', 't')
SELECT getenv('HOME')
SELECT * FROM query('SELECT 1')
SELECT * FROM query_table('raw.weather')
SELECT * FROM duckdb_settings()
SELECT * FROM duckdb_secrets()
SELECT * FROM duckdb_views()
SELECT * FROM audit.queries
SELECT * FROM system.main.duckdb_tables()
WITH x AS (SELECT 1) SELECT * FROM read_text('/etc/passwd'), x
SELECT (SELECT count(*) FROM read_csv('/etc/passwd'))
SELECT 1; COPY (SELECT 1) TO '${TMP}/y.csv'
SELECT * FROM raw.weather; DROP VIEW raw.weather
EXPLAIN ANALYZE COPY (SELECT 1) TO '${TMP}/z.csv'
