-- 事故：按约 500 m 网格记录 / Collisions: keep the collision window, keyed by hot-spot cell.
INSERT OR IGNORE INTO collision_history
SELECT id, occurred_at,
  printf('%.4f,%.4f', floor(latitude / p.col_cell_deg) * p.col_cell_deg, floor(longitude / p.col_cell_deg) * p.col_cell_deg),
  on_street, street_code
FROM in_traffic_collisions CROSS JOIN params p
WHERE latitude IS NOT NULL AND longitude IS NOT NULL AND occurred_at IS NOT NULL;
