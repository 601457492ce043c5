package lakewriter

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"citybrain/internal/broker"
)

// Lake writers of one table on several instances (docs/roles.md). With
// lake_writer.partitioned, the writers of a routed topic (its records keyed
// by the schema's route_by field, each stream in order within a partition)
// join the consumer group citybrain-lake-<source> and each reads the
// partitions the group gives it (Only). Kafka's committed offsets are not
// used — the table's snapshot keeps every partition's offset, as with one
// writer. A writer commits its files with its partitions' offsets and
// high-water marks; a commit that lost the race to another writer is merged
// into the table's new state and made again with the same files (merge); a
// writer whose partition another writer committed meanwhile (it was paused
// past the session timeout and the partition moved) drops its batch
// (ErrFenced) and reads again from the table's position. A topic that is not
// routed is shared the same way: its records are keyed by their stream, so a
// stream is in one partition and its mark moves only in its owner's commits.

// GroupID is the consumer group of the lake writers of a source.
func GroupID(source string) string { return "citybrain-lake-" + source }

// RunGroup runs the writer over the partitions the consumer group gives this
// instance, until ctx is done; at each rebalance it commits what it read and
// starts again with its new partitions.
func (w *Writer) RunGroup(ctx context.Context, sessionTimeout time.Duration) error {
	broker.Rejoin(ctx, func(ctx context.Context) error { return w.member(ctx, sessionTimeout) }, func(err error, backoff time.Duration) {
		w.log.Warn("湖写入器重新加入消费组 lake writer rejoining its consumer group", "err", err, "in", backoff)
	})
	return nil
}

func (w *Writer) member(ctx context.Context, st time.Duration) error {
	cg, err := w.client.ConsumerGroup(GroupID(w.source), []string{w.topic}, st, func(m string) { w.log.Debug(m) })
	if err != nil {
		return err
	}
	defer cg.Close()
	var mu sync.Mutex
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			return err
		}
		parts := []int{}
		for _, a := range gen.Assignments[w.topic] {
			parts = append(parts, a.ID)
		}
		sort.Ints(parts)
		w.log.Info("湖写入器分得分区 lake writer owns partitions", "generation", gen.ID, "partitions", fmt.Sprint(parts))
		mu.Lock()
		w.Only = parts
		w.owned.Store(&parts)
		mu.Unlock()
		gen.Start(func(gctx context.Context) {
			if len(parts) == 0 || (w.Ready != nil && !w.Ready(parts)) {
				<-gctx.Done()
				return
			}
			w.Run(gctx)
		})
	}
}

// Owned is the partitions the writer reads (nil: every partition; not in a group).
func (w *Writer) Owned() []int {
	if p := w.owned.Load(); p != nil {
		return *p
	}
	return nil
}
