package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/internal/auth"
)

// withStdin runs f with os.Stdin reading s.
func withStdin(t *testing.T, s string, f func()) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(s)
	w.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old; r.Close() }()
	f()
}

func TestUsersCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	run := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		var err error
		withStdin(t, stdin, func() {
			err = Run(ctx, append([]string{"--data-dir", dir}, args...), &out, &errOut)
		})
		return out.String() + errOut.String(), err
	}
	if out, err := run("s3cret-pass\n", "users", "add", "wang", "--role", "analyst", "--password-stdin"); err != nil {
		t.Fatalf("add: %v %s", err, out)
	}
	if out, err := run("s3cret-pass\n", "users", "add", "w1", "--role", "department", "--password-stdin"); err == nil || !strings.Contains(out, "--department") {
		t.Errorf("department user without --department: %v %s", err, out)
	}
	if out, err := run("s3cret-pass\n", "users", "add", "w1", "--role", "department", "--department", "water", "--password-stdin"); err != nil {
		t.Fatalf("add department user: %v %s", err, out)
	}
	if out, err := run("short\n", "users", "add", "x", "--role", "analyst", "--password-stdin"); err == nil || !strings.Contains(out, "at least 8") {
		t.Errorf("short password: %v %s", err, out)
	}
	out, err := run("", "users", "list")
	if err != nil || !strings.Contains(out, "wang") || !strings.Contains(out, "water") {
		t.Fatalf("list: %v %s", err, out)
	}
	if out, err := run("another-pass\n", "users", "passwd", "wang", "--password-stdin"); err != nil {
		t.Fatalf("passwd: %v %s", err, out)
	}
	s, err := auth.Open(auth.DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify("wang", "another-pass"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := s.Verify("wang", "s3cret-pass"); err == nil {
		t.Error("old password still valid")
	}
	if out, err := run("", "users", "delete", "wang"); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	if out, err := run("", "users", "delete", "wang"); err == nil {
		t.Errorf("deleting twice: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "users.json")); err != nil {
		t.Fatal(err)
	}
	if out, err := run("", "users", "--help"); err != nil || !strings.Contains(out, "SCRAM-SHA-256") {
		t.Errorf("--help: %v %s", err, out)
	}
}
