// Package objstore is where the lake's files live: the local disk (today's
// default) or an S3-compatible object store (issue #22, docs/scale-out.md).
//
// A Store holds immutable objects by key (a slash-separated path under the
// store's root or bucket prefix): Put writes an object whole (on the local
// disk through a temporary file and a rename, so a reader never sees half of
// it; on S3 a PUT is atomic), Get and GetRange read it, List lists keys by
// prefix (orphan removal lists the bucket), Delete removes it.
//
// S3 calls retry on throttling (503 SlowDown), 5xx, timeouts and dropped
// connections with exponential backoff (RetryMaxAttempts, 30 s apart at
// most); each call is bounded by the caller's context.
//
// Cache (cache.go) keeps local copies of objects for readers that need a
// file path (DuckDB), bounded by size.
package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Object is a listed object.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// ErrNotFound is returned for a key with no object.
var ErrNotFound = errors.New("对象不存在 object not found")

// Store is a place for immutable objects.
type Store interface {
	Put(ctx context.Context, key string, body []byte) error
	// PutFile writes the object from a local file, streamed (data files
	// are up to hundreds of megabytes).
	PutFile(ctx context.Context, key, local string) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	Stat(ctx context.Context, key string) (Object, error)
	List(ctx context.Context, prefix string) ([]Object, error)
	Delete(ctx context.Context, key string) error
	// URL is the store's location (file:///… or s3://bucket/prefix).
	URL() string
}

// Options set an S3 store; empty fields come from the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION).
type Options struct {
	Endpoint  string // e.g. http://127.0.0.1:8333 (empty: AWS)
	Region    string
	PathStyle bool // bucket in the path (SeaweedFS, MinIO), not in the host name
	AccessKey string
	SecretKey string
	// RetryMaxAttempts per call (default 8: about a minute of backoff, a
	// server restart's worth).
	RetryMaxAttempts int
}

// Open opens the store at location: s3://bucket/prefix, file:///path or a
// plain local path.
func Open(location string, o Options) (Store, error) {
	if !strings.Contains(location, "://") {
		return NewLocal(location)
	}
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("存储位置无效 bad location %q: %w", location, err)
	}
	switch u.Scheme {
	case "file":
		return NewLocal(u.Path)
	case "s3", "s3a":
		if u.Host == "" {
			return nil, fmt.Errorf("存储位置缺少桶名 location %q names no bucket (want s3://bucket/prefix)", location)
		}
		return NewS3(u.Host, strings.Trim(u.Path, "/"), o)
	}
	return nil, fmt.Errorf("不支持的存储 location %q: want s3://bucket/prefix, file:///path or a local path", location)
}

// Local is a store on the local disk under Root.
type Local struct{ Root string }

// NewLocal is the store under root (created if missing).
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	return &Local{Root: abs}, nil
}

func (l *Local) path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if clean == "/" || strings.Contains(key, "\\") {
		return "", fmt.Errorf("对象键无效 bad key %q", key)
	}
	return filepath.Join(l.Root, filepath.FromSlash(clean)), nil
}

// URL is file://Root.
func (l *Local) URL() string { return "file://" + l.Root }

// Put writes the object through a temporary file and a rename.
func (l *Local) Put(_ context.Context, key string, body []byte) error {
	return l.write(key, bytes.NewReader(body))
}

// PutFile copies the local file in through a temporary file and a rename.
func (l *Local) PutFile(_ context.Context, key, local string) error {
	src, err := os.Open(local)
	if err != nil {
		return err
	}
	defer src.Close()
	return l.write(key, src)
}

// write writes the object from r through a temporary file, synced, and a
// rename, so a reader never sees half of it.
func (l *Local) write(key string, r io.Reader) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	f.Close()
	return os.Rename(f.Name(), p)
}

// Get opens the object.
func (l *Local) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return f, err
}

// GetRange reads n bytes from off.
func (l *Local) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	rc, err := l.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	m, err := rc.(*os.File).ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:m], nil
}

// Stat is the object's size and time.
func (l *Local) Stat(_ context.Context, key string) (Object, error) {
	p, err := l.path(key)
	if err != nil {
		return Object{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return Object{}, err
	}
	return Object{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List lists the objects whose keys start with prefix, sorted (temporary
// files of a Put in progress left out).
func (l *Local) List(_ context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(l.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".put-") {
			return nil
		}
		rel, _ := filepath.Rel(l.Root, p)
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		out = append(out, Object{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

// Delete removes the object (no error if it is already gone).
func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// S3 is a store in a bucket of an S3-compatible object store, under Prefix.
type S3 struct {
	Bucket, Prefix string
	client         *s3.Client
}

// NewS3 is the store in bucket under prefix.
func NewS3(bucket, prefix string, o Options) (*S3, error) {
	region := o.Region
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	ak, sk := o.AccessKey, o.SecretKey
	if ak == "" {
		ak, sk = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if ak == "" || sk == "" {
		return nil, errors.New("对象存储缺少凭据 S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	attempts := o.RetryMaxAttempts
	if attempts <= 0 {
		attempts = 8
	}
	opts := s3.Options{
		Region:       region,
		UsePathStyle: o.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, os.Getenv("AWS_SESSION_TOKEN")),
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.MaxBackoff = 30 * time.Second
			// Throttling and restarts are waited out, not rationed: the
			// client-side retry budget would stop retrying after a burst.
			so.RateLimiter = noRateLimit{}
		}),
	}
	if o.Endpoint != "" {
		opts.BaseEndpoint = aws.String(o.Endpoint)
	}
	return &S3{Bucket: bucket, Prefix: strings.Trim(prefix, "/"), client: s3.New(opts)}, nil
}

type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }

func (s *S3) key(k string) string {
	if s.Prefix == "" {
		return k
	}
	return s.Prefix + "/" + k
}

// URL is s3://bucket/prefix.
func (s *S3) URL() string { return "s3://" + path.Join(s.Bucket, s.Prefix) }

// EnsureBucket creates the bucket if it does not exist.
func (s *S3) EnsureBucket(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)}); err == nil {
		return nil
	}
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if errors.As(err, &owned) {
		return nil
	}
	return err
}

// Put writes the object (one PUT: atomic).
func (s *S3) Put(ctx context.Context, key string, body []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.key(key)),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	if err != nil {
		return fmt.Errorf("写入对象失败 put s3://%s/%s: %w", s.Bucket, s.key(key), err)
	}
	return nil
}

// PutFile uploads the local file in one PUT (the body is seekable, so a
// retried attempt sends it again from the start).
func (s *S3) PutFile(ctx context.Context, key, local string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.key(key)),
		Body: f, ContentLength: aws.Int64(st.Size())})
	if err != nil {
		return fmt.Errorf("上传对象失败 put s3://%s/%s: %w", s.Bucket, s.key(key), err)
	}
	return nil
}

// Get opens the object.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.key(key))})
	if err != nil {
		return nil, s.notFound(err, key)
	}
	return out.Body, nil
}

func (s *S3) notFound(err error, key string) error {
	var nk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nk) || errors.As(err, &nf) {
		return fmt.Errorf("%w: s3://%s/%s", ErrNotFound, s.Bucket, s.key(key))
	}
	return fmt.Errorf("读取对象失败 s3://%s/%s: %w", s.Bucket, s.key(key), err)
}

// GetRange reads n bytes from off.
func (s *S3) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.key(key)),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))})
	if err != nil {
		return nil, s.notFound(err, key)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Stat is the object's size and time.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.key(key))})
	if err != nil {
		return Object{}, s.notFound(err, key)
	}
	o := Object{Key: key, Size: aws.ToInt64(out.ContentLength)}
	if out.LastModified != nil {
		o.ModTime = *out.LastModified
	}
	return o, nil
}

// List lists the objects whose keys start with prefix, sorted, every page.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(s.key(prefix))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("列出对象失败 list s3://%s/%s: %w", s.Bucket, s.key(prefix), err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if s.Prefix != "" {
				k = strings.TrimPrefix(k, s.Prefix+"/")
			}
			ob := Object{Key: k, Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				ob.ModTime = *o.LastModified
			}
			out = append(out, ob)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object (no error if it is already gone).
func (s *S3) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.key(key))})
	if err != nil {
		return fmt.Errorf("删除对象失败 delete s3://%s/%s: %w", s.Bucket, s.key(key), err)
	}
	return nil
}
