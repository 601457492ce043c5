// Package response is the emergency response service's core (issue #24,
// docs/response.md): the plans as data resolved by day (plans.go), the
// engine that turns warning transitions into responses and tasks with
// grouping, inhibition, silences and escalation chains (engine.go), its
// state saved atomically (store.go), the timeline's sink into
// marts.responses (sink.go), the responder app's API (api.go) and decision
// support around an event (support.go). The notification channels are in
// package channels; the serve service that runs it all in service.
package response
