package cli

// The services citybrain serve runs beside the connectors and lake writers
// register themselves (app.RegisterService) from their packages' init
// functions; importing them here is what puts them in the binary.
import ()
