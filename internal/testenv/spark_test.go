package testenv

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// IO for iceberg-go
	"github.com/apache/iceberg-go/table"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSparkRESTCatalogS3: Apache Spark (pyspark with the Iceberg runtime)
// writes an Iceberg table through the REST catalog whose warehouse is on
// SeaweedFS (issue #22): namespace, table, two inserts around an ADD
// COLUMN, read back; the objects are in the bucket under
// <prefix>/<namespace>/<table>/, the catalog serves the table with the
// evolved schema and the current metadata file, which is in the bucket, and
// iceberg-go, given the same ClientProperties, reads the same rows. A script
// that raises returns what it printed and an error with its traceback.
func TestSparkRESTCatalogS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SeaweedFS, a Java Iceberg REST catalog and Spark; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	// Warm the caches first, so the timings below are of the services.
	start := time.Now()
	if _, _, err := SparkPython(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := IcebergRESTJars(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := SeaweedFSBin(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("caches ready in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	sw, err := StartSeaweedFS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Stop() })
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(sw.Endpoint()), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(SeaweedAccessKey, SeaweedSecretKey, ""),
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lake")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	opts := RESTS3Options{Endpoint: sw.Endpoint(), Bucket: "lake", Prefix: "warehouse",
		AccessKey: SeaweedAccessKey, SecretKey: SeaweedSecretKey}
	rc, err := StartRESTCatalogS3(ctx, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rc.Stop(); err != nil {
			t.Error(err)
		}
	})
	if got, want := rc.Warehouse(), "s3://lake/warehouse"; got != want {
		t.Errorf("Warehouse() = %q, want %q", got, want)
	}
	t.Logf("SeaweedFS and the REST catalog up in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	out, err := RunSpark(ctx, SparkConfig{CatalogURI: rc.URI(), S3: opts, Dir: t.TempDir()}, `
import json
spark.sql("CREATE NAMESPACE city")
spark.sql("CREATE TABLE city.readings (sensor string, value bigint) USING iceberg")
spark.sql("INSERT INTO city.readings VALUES ('a', 1), ('b', 2), ('c', 3)")
spark.sql("ALTER TABLE lake.city.readings ADD COLUMN unit string")
spark.sql("INSERT INTO city.readings VALUES ('d', 4, 'C'), ('e', 5, 'K')")
r = spark.sql("SELECT count(*) AS n, sum(value) AS total, count(unit) AS with_unit FROM city.readings").first()
print(json.dumps({
    "n": r.n, "total": r.total, "with_unit": r.with_unit,
    "columns": spark.table("city.readings").columns,
    "snapshots": spark.sql("SELECT count(*) FROM lake.city.readings.snapshots").first()[0],
    "files": [f.file_path for f in spark.sql("SELECT file_path FROM lake.city.readings.files").collect()],
}))
`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Spark ran in %v", time.Since(start).Round(time.Millisecond))
	var got struct {
		N         int      `json:"n"`
		Total     int      `json:"total"`
		WithUnit  int      `json:"with_unit"`
		Columns   []string `json:"columns"`
		Snapshots int      `json:"snapshots"`
		Files     []string `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("Spark printed %q: %v", out, err)
	}
	if got.N != 5 || got.Total != 15 || got.WithUnit != 2 {
		t.Errorf("count, sum(value), count(unit) = %d, %d, %d; want 5, 15, 2", got.N, got.Total, got.WithUnit)
	}
	if strings.Join(got.Columns, ",") != "sensor,value,unit" {
		t.Errorf("columns = %v, want [sensor value unit]", got.Columns)
	}
	if got.Snapshots != 2 {
		t.Errorf("%d snapshots, want 2 (one per insert)", got.Snapshots)
	}
	const tableDir = "s3://lake/warehouse/city/readings/"
	if len(got.Files) < 2 {
		t.Errorf("data files %v, want at least one per insert", got.Files)
	}
	for _, f := range got.Files {
		if !strings.HasPrefix(f, tableDir+"data/") || !strings.HasSuffix(f, ".parquet") {
			t.Errorf("data file %q not a Parquet file under %sdata/", f, tableDir)
		}
	}

	// The objects are in the bucket: every data file Spark reported, and
	// the metadata (table metadata JSON, manifest lists and manifests).
	keys := map[string]int64{}
	var token *string
	for {
		page, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lake"),
			Prefix: aws.String("warehouse/city/readings/"), ContinuationToken: token})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, o := range page.Contents {
			keys[*o.Key] = *o.Size
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		token = page.NextContinuationToken
	}
	for _, f := range got.Files {
		if size, ok := keys[strings.TrimPrefix(f, "s3://lake/")]; !ok || size == 0 {
			t.Errorf("data file %s: in bucket %v, %d bytes", f, ok, size)
		}
	}
	var metadataJSON, avro int
	for k := range keys {
		switch {
		case strings.HasPrefix(k, "warehouse/city/readings/metadata/") && strings.HasSuffix(k, ".metadata.json"):
			metadataJSON++
		case strings.HasPrefix(k, "warehouse/city/readings/metadata/") && strings.HasSuffix(k, ".avro"):
			avro++
		}
	}
	// create, insert, add column, insert: four versions of the metadata.
	if metadataJSON != 4 || avro < 4 {
		t.Errorf("%d metadata.json and %d Avro files in the bucket, want 4 and at least 4 (manifest lists and manifests): %v", metadataJSON, avro, keys)
	}

	// The catalog serves the table: its location, the current metadata file
	// (in the bucket), the evolved schema and the row count.
	resp, err := http.Get(rc.URI() + "/v1/namespaces/city/tables/readings")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET table: %d %s", resp.StatusCode, body)
	}
	var load struct {
		MetadataLocation string `json:"metadata-location"`
		Metadata         struct {
			Location        string `json:"location"`
			CurrentSchemaID int    `json:"current-schema-id"`
			CurrentSnapshot int64  `json:"current-snapshot-id"`
			Schemas         []struct {
				SchemaID int `json:"schema-id"`
				Fields   []struct {
					Name string `json:"name"`
				} `json:"fields"`
			} `json:"schemas"`
			Snapshots []struct {
				SnapshotID int64             `json:"snapshot-id"`
				Summary    map[string]string `json:"summary"`
			} `json:"snapshots"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &load); err != nil {
		t.Fatalf("GET table: %v: %s", err, body)
	}
	if load.Metadata.Location != strings.TrimSuffix(tableDir, "/") {
		t.Errorf("table location %q, want %q", load.Metadata.Location, strings.TrimSuffix(tableDir, "/"))
	}
	if !strings.HasPrefix(load.MetadataLocation, tableDir+"metadata/") {
		t.Errorf("metadata-location %q not under %smetadata/", load.MetadataLocation, tableDir)
	} else if _, ok := keys[strings.TrimPrefix(load.MetadataLocation, "s3://lake/")]; !ok {
		t.Errorf("metadata-location %q is not in the bucket", load.MetadataLocation)
	}
	var fields []string
	for _, s := range load.Metadata.Schemas {
		if s.SchemaID == load.Metadata.CurrentSchemaID {
			for _, f := range s.Fields {
				fields = append(fields, f.Name)
			}
		}
	}
	if strings.Join(fields, ",") != "sensor,value,unit" {
		t.Errorf("catalog's current schema has %v, want [sensor value unit]", fields)
	}
	var records string
	for _, s := range load.Metadata.Snapshots {
		if s.SnapshotID == load.Metadata.CurrentSnapshot {
			records = s.Summary["total-records"]
		}
	}
	if records != "5" {
		t.Errorf("current snapshot's total-records = %q, want 5", records)
	}

	// iceberg-go reads what Spark wrote, with the same client properties.
	cat, err := rest.NewCatalog(ctx, "lake", rc.URI(), rest.WithAdditionalProps(iceberg.Properties(opts.ClientProperties())))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.LoadTable(ctx, table.Identifier{"city", "readings"})
	if err != nil {
		t.Fatal(err)
	}
	arr, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("iceberg-go scan: %v", err)
	}
	defer arr.Release()
	var sum int64
	var units int
	for i := 0; i < int(arr.NumCols()); i++ {
		for _, chunk := range arr.Column(i).Data().Chunks() {
			switch arr.Schema().Field(i).Name {
			case "value":
				for _, v := range chunk.(*array.Int64).Int64Values() {
					sum += v
				}
			case "unit":
				units += chunk.Len() - chunk.NullN()
			}
		}
	}
	if arr.NumRows() != 5 || sum != 15 || units != 2 || arr.NumCols() != 3 {
		t.Errorf("iceberg-go read %d rows, %d columns, sum(value) %d, count(unit) %d; want 5, 3, 15, 2", arr.NumRows(), arr.NumCols(), sum, units)
	}

	// A failing script: what it printed comes back with an error holding
	// the Python traceback.
	out, err = RunSpark(ctx, SparkConfig{CatalogURI: rc.URI(), S3: opts}, "print('partial')\nraise ValueError('boom')\n")
	if err == nil || !strings.Contains(err.Error(), "ValueError: boom") || out != "partial\n" {
		t.Errorf("failing script: out %q, err %v; want \"partial\\n\" and the traceback", out, err)
	}
}
