// Command citybrain is the CityBrain Lakehouse: see `citybrain --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"citybrain/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx)
	stop()
	os.Exit(code)
}
