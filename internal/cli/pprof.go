package cli

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
)

// servePprof serves Go's profiles (/debug/pprof/) on the address in
// CITYBRAIN_PPROF, for measuring serve's own cost:
//
//	CITYBRAIN_PPROF=127.0.0.1:6061 citybrain serve
//	go tool pprof -top 'http://127.0.0.1:6061/debug/pprof/profile?seconds=600'
//
// Unset (the default) it does nothing. The profiles have their own listener,
// never the query layer's: they are for the operator on the machine, with no
// login in front of them.
func servePprof(log *slog.Logger) {
	addr := os.Getenv("CITYBRAIN_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("profiles served (CITYBRAIN_PPROF)", "addr", "http://"+addr+"/debug/pprof/")
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Error("CITYBRAIN_PPROF", "addr", addr, "err", err)
		}
	}()
}
