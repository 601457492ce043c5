package cli

// The services citybrain serve runs beside the connectors and lake writers
// register themselves (app.RegisterService) from their packages' init
// functions; importing them here is what puts them in the binary.
import (
	_ "citybrain/dashboards/service"
	_ "citybrain/internal/sim/service"
	_ "citybrain/models/service"
	_ "citybrain/pipelines/extracts/service"
	_ "citybrain/pipelines/inspection/service"
	_ "citybrain/pipelines/response/service"
	_ "citybrain/pipelines/warnings/service"
	_ "citybrain/warehouse/sqlservice"
)
