package testenv

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSeaweedFSS3: the S3-compatible server the object-storage tests use
// (issue #22) is a real SeaweedFS built from the module proxy: through
// aws-sdk-go-v2's S3 client, path-style, with its static identity, a bucket
// is made, objects are put, listed by prefix, read (whole and a range) and
// deleted, a wrong secret is refused, and the objects survive a restart.
func TestSeaweedFSS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds (once, cached) and starts SeaweedFS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sw, err := StartSeaweedFS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Stop() })
	client := func(secret string) *s3.Client {
		return s3.New(s3.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(sw.Endpoint()), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(SeaweedAccessKey, secret, ""),
		})
	}
	c := client(SeaweedSecretKey)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lake")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	put := func(key, body string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	put("raw/weather/data/00001.parquet", "PAR1 one")
	put("raw/weather/data/00002.parquet", "PAR1 two two")
	put("raw/weather/metadata/v1.metadata.json", `{"format-version":2}`)
	list := func() []string {
		t.Helper()
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lake"), Prefix: aws.String("raw/weather/data/")})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, *o.Key)
		}
		return keys
	}
	if keys := list(); len(keys) != 2 || keys[0] != "raw/weather/data/00001.parquet" {
		t.Fatalf("listed %v, want the two data files", keys)
	}
	get := func(key, rng string) string {
		t.Helper()
		in := &s3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String(key)}
		if rng != "" {
			in.Range = aws.String(rng)
		}
		out, err := c.GetObject(ctx, in)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return string(b)
	}
	if got := get("raw/weather/data/00002.parquet", ""); got != "PAR1 two two" {
		t.Fatalf("got %q", got)
	}
	if got := get("raw/weather/data/00002.parquet", "bytes=5-7"); got != "two" {
		t.Fatalf("range 5-7: %q, want %q", got, "two")
	}
	if _, err := client("wrong").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String("x"), Body: bytes.NewReader(nil)}); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	if err := sw.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get("raw/weather/metadata/v1.metadata.json", ""); got != `{"format-version":2}` {
		t.Fatalf("after a restart: %q", got)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("lake"), Key: aws.String("raw/weather/data/00001.parquet")}); err != nil {
		t.Fatal(err)
	}
	if keys := list(); len(keys) != 1 {
		t.Fatalf("after delete: %v", keys)
	}
}
