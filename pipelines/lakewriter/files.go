package lakewriter

import (
	"context"
	"time"
)

// removeFile deletes a data file the writer made but did not commit (on an
// object store too; what a crash leaves, orphan removal deletes).
func (w *Writer) removeFile(uri string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = w.lake.RemoveFile(ctx, uri)
}
