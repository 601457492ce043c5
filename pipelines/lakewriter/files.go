package lakewriter

import (
	"os"

	"citybrain/warehouse"
)

func removeLocal(uri string) { _ = os.Remove(warehouse.LocalPath(uri)) }
