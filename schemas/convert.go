package schemas

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// FieldID is the proposed Iceberg field id of the canonical field at
// position i when a table is created. The catalog may assign other ids:
// writers take them from the table (IDs), never from here.
func FieldID(i int) int { return i + 1 }

// IDs maps column names to the Iceberg field ids of a table.
type IDs map[string]int

// PartitionFieldID is the Iceberg partition field id of the table's only
// partition field.
const PartitionFieldID = 1000

func icebergType(t Type) iceberg.Type {
	switch t {
	case String:
		return iceberg.PrimitiveTypes.String
	case Int:
		return iceberg.PrimitiveTypes.Int32
	case Long:
		return iceberg.PrimitiveTypes.Int64
	case Double:
		return iceberg.PrimitiveTypes.Float64
	case Bool:
		return iceberg.PrimitiveTypes.Bool
	case Timestamp:
		return iceberg.PrimitiveTypes.TimestampTz
	case Date:
		return iceberg.PrimitiveTypes.Date
	}
	panic(fmt.Sprintf("schemas: unchecked type %q", t))
}

// IcebergSchema is the lake table's schema: the canonical fields then the
// _cursor metadata column. Field docs are "中文 (English)".
func (s *Schema) IcebergSchema() *iceberg.Schema {
	fields := make([]iceberg.NestedField, 0, len(s.Fields)+1)
	for i, f := range s.Fields {
		doc := f.Doc.String()
		if f.Unit != "" {
			doc += " [" + f.Unit + "]"
		}
		fields = append(fields, iceberg.NestedField{
			ID: FieldID(i), Name: f.Name, Type: icebergType(f.Type), Required: false, Doc: doc,
		})
	}
	fields = append(fields, iceberg.NestedField{
		ID: len(s.Fields) + 1, Name: CursorField, Type: iceberg.PrimitiveTypes.String,
		Doc: "来源游标 (source cursor: file#line, page token or watermark)",
	})
	return iceberg.NewSchema(0, fields...)
}

// PartitionSpec is the Iceberg partition spec for the schema's Partition.
func (s *Schema) PartitionSpec() iceberg.PartitionSpec {
	if s.Partition.Field == "" {
		return *iceberg.UnpartitionedSpec
	}
	var tr iceberg.Transform
	switch s.Partition.Transform {
	case "day":
		tr = iceberg.DayTransform{}
	case "month":
		tr = iceberg.MonthTransform{}
	default:
		tr = iceberg.IdentityTransform{}
	}
	return iceberg.NewPartitionSpecID(0, iceberg.PartitionField{
		SourceIDs: []int{FieldID(s.Index(s.Partition.Field))}, FieldID: PartitionFieldID,
		Name: s.Partition.Field + "_" + s.Partition.Transform, Transform: tr,
	})
}

// ArrowSchema is the Arrow schema of the lake table, with Iceberg field ids
// in the field metadata (PARQUET:field_id) as Arrow-based Iceberg writers expect.
func (s *Schema) ArrowSchema(ids IDs) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(s.Fields)+1)
	add := func(name string, t Type, id int) {
		var dt arrow.DataType
		switch t {
		case String:
			dt = arrow.BinaryTypes.String
		case Int:
			dt = arrow.PrimitiveTypes.Int32
		case Long:
			dt = arrow.PrimitiveTypes.Int64
		case Double:
			dt = arrow.PrimitiveTypes.Float64
		case Bool:
			dt = arrow.FixedWidthTypes.Boolean
		case Timestamp:
			dt = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
		case Date:
			dt = arrow.FixedWidthTypes.Date32
		}
		fields = append(fields, arrow.Field{Name: name, Type: dt, Nullable: true,
			Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{fmt.Sprint(id)})})
	}
	for _, f := range s.Fields {
		add(f.Name, f.Type, ids[f.Name])
	}
	add(CursorField, String, ids[CursorField])
	return arrow.NewSchema(fields, nil)
}

func parquetNode(t Type) parquet.Node {
	switch t {
	case String:
		return parquet.String()
	case Int:
		return parquet.Int(32)
	case Long:
		return parquet.Int(64)
	case Double:
		return parquet.Leaf(parquet.DoubleType)
	case Bool:
		return parquet.Leaf(parquet.BooleanType)
	case Timestamp:
		return parquet.TimestampAdjusted(parquet.Microsecond, true)
	case Date:
		return parquet.Date()
	}
	panic(fmt.Sprintf("schemas: unchecked type %q", t))
}

// pageCodec compresses every column of every data file. One shared
// instance, because the codec pools its zstd encoders: a codec per column
// per file would allocate (and clear) a fresh encoder history each time,
// which was half of the lake writer's allocations.
var pageCodec = &zstd.Codec{Level: zstd.SpeedFastest}

// ParquetSchema is the Parquet schema of the lake's data files: every column
// optional, zstd-compressed, carrying its Iceberg field id. Note that
// parquet-go orders a group's columns by name; use ParquetColumns to find
// each field's leaf column index.
func (s *Schema) ParquetSchema(ids IDs) *parquet.Schema {
	group := parquet.Group{}
	for _, f := range s.Fields {
		group[f.Name] = parquet.FieldID(parquet.Compressed(parquet.Optional(encoded(parquetNode(f.Type))), pageCodec), ids[f.Name])
	}
	group[CursorField] = parquet.FieldID(parquet.Compressed(parquet.Optional(encoded(parquet.String())), pageCodec), ids[CursorField])
	return parquet.NewSchema(s.Name, group)
}

// encoded gives string columns the PLAIN encoding. parquet-go's default for
// byte arrays is DELTA_LENGTH_BYTE_ARRAY, which Apache Iceberg's vectorized
// Parquet reader (Spark, Trino's Iceberg connector) refuses ("Cannot support
// vectorized reads for column … with encoding DELTA_LENGTH_BYTE_ARRAY"):
// the lake's files must be readable by every engine that shares it (issue
// #22). zstd compresses the plain pages about as well.
func encoded(n parquet.Node) parquet.Node {
	if n.Type().Kind() == parquet.ByteArray {
		return parquet.Encoded(n, &parquet.Plain)
	}
	return n
}

// ParquetColumns returns, for each canonical field and then _cursor, its
// leaf column index in ParquetSchema.
func (s *Schema) ParquetColumns(ps *parquet.Schema) []int {
	cols := make([]int, len(s.Fields)+1)
	for i, f := range s.Fields {
		leaf, _ := ps.Lookup(f.Name)
		cols[i] = leaf.ColumnIndex
	}
	leaf, _ := ps.Lookup(CursorField)
	cols[len(s.Fields)] = leaf.ColumnIndex
	return cols
}
