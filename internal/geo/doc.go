// Package geo holds the reference geography of Xicheng District and the
// coordinate conversions every feed needs before its points can be put on
// the district's map.
//
// Why it exists: the canonical schemas store coordinates in WGS-84 (GPS,
// OpenStreetMap), but Chinese map providers (Amap, Tencent, Baidu's base
// layer) publish GCJ-02, an obfuscated datum that is offset from WGS-84 by
// up to several hundred metres inside China, and some foreign sample feeds
// (planning permits of Burlington, Ontario) give projected UTM metres. A
// point is only useful to the city brain once it is in WGS-84 and assigned
// to one of the district's 15 streets (街道), the unit leaders drill into
// and that risk portraits and warnings roll up to.
//
// Conversions:
//   - GCJ02ToWGS84 / WGS84ToGCJ02: the published WGS-84 → GCJ-02 transform
//     and its iterative inverse (better than 1e-7° after convergence). Points
//     outside mainland China's bounding box are returned unchanged, as the
//     providers do.
//   - UTMToWGS84 / WGS84ToUTM: transverse Mercator with the Krüger series
//     (fourth order in the third flattening, sub-millimetre in a UTM zone) on
//     the WGS-84 ellipsoid. NAD83 (GRS 80) differs from WGS-84 by well under
//     a metre at these scales, so NAD83 / UTM inputs (EPSG:269xx) can use it.
//
// Reference data, embedded from data/ (see data/SOURCES.md):
//   - the 15 street polygons in WGS-84, © OpenStreetMap contributors (ODbL
//     1.0) — keep that attribution wherever street data is shown;
//   - the district outline (DataV GeoAtlas, GCJ-02, and its WGS-84 version).
//
// Streets.Locate assigns a WGS-84 point to its street by point-in-polygon
// (Polygon and MultiPolygon, holes honoured, bounding-box prefilter). A point
// on a boundary (within 1e-9°, about 0.1 mm) belongs to every street that the
// boundary touches; Locate then answers deterministically with the lowest
// adcode. Points outside every street, and non-finite input, are not found.
//
// The GeoJSON files carry no English names; Street.NameEN is a pinyin
// rendering from a fixed table in this package ("Xinjiekou Subdistrict"),
// and empty for a name the table does not know.
package geo
