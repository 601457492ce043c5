// zh-CN first, English by the switch in the header (kept in localStorage).
export type Lang = "zh" | "en";
let lang: Lang = (localStorage.getItem("citybrain.lang") as Lang) === "en" ? "en" : "zh";
export function getLang(): Lang { return lang; }
export function setLang(l: Lang) { lang = l; localStorage.setItem("citybrain.lang", l); document.documentElement.lang = l === "zh" ? "zh-CN" : "en"; }

const dict: Record<string, [string, string]> = {
  title: ["西城区城市大脑 · 城市安全", "Xicheng City Brain · Urban Safety"],
  cockpit: ["驾驶舱", "Cockpit"], dept: ["本部门", "My department"], map: ["一张图", "One map"], risk: ["风险画像", "Risk portrait"],
  crowd: ["大客流", "Crowd flow"], health: ["数据健康", "Data health"], sql: ["SQL 控制台", "SQL console"],
  admin: ["用户管理", "Users"], logout: ["退出", "Log out"], login: ["登录", "Log in"],
  user: ["用户名", "User name"], password: ["密码", "Password"],
  from: ["起", "From"], to: ["止", "To"], street: ["街道", "Street"], industry: ["行业", "Industry"], all: ["全部", "All"],
  reset: ["重置", "Reset"], no_data: ["暂无数据", "No data yet"], no_access: ["无权查看", "No access"], error: ["查询出错", "Query failed"],
  loading: ["加载中…", "Loading…"], not_served: ["此功能在本服务器上未启用，请联系管理员", "This feature is not enabled on this server: ask an administrator"],
  kpis: ["规划目标进展", "Plan targets"], live_warnings: ["实时预警", "Live warnings"],
  warnings_by_level: ["当前预警（按等级）", "Active warnings by level"],
  ent_by_street: ["企业风险等级（按街道）", "Enterprises by risk level and street"],
  trends: ["事件趋势", "Trends"], incidents: ["警情", "Incidents"], events12345: ["12345 诉求", "12345 events"], warnings: ["预警", "Warnings"],
  freshness: ["数据新鲜度", "Data freshness"], recent_events: ["最新 12345 诉求", "Latest 12345 requests"],
  events_by_category: ["12345 诉求类别", "12345 categories"],
  street_centre: ["所在街道中心（无精确坐标）", "street centre (no exact location)"], exact: ["精确位置", "exact"],
  red: ["红色", "Red"], orange: ["橙色", "Orange"], yellow: ["黄色", "Yellow"], blue: ["蓝色", "Blue"],
  level: ["等级", "Level"], score: ["评分", "Score"], n: ["数量", "Count"], day: ["日期", "Day"],
  layers: ["图层", "Layers"], layer_crowd: ["人群密度网格", "Crowd density grid"], layer_venues: ["重点场所（预警等级）", "Venues (warning level)"],
  layer_enterprises: ["企业（风险等级）", "Enterprises (risk level)"], layer_shelters: ["应急避难场所", "Shelters"],
  layer_warehouses: ["应急物资储备库", "Supply warehouses"], layer_fire_stations: ["消防站", "Fire stations"],
  layer_waterlogging: ["积水点", "Waterlogging points"], layer_lifeline: ["生命线传感器", "Lifeline sensors"], layer_incidents: ["近期警情", "Recent incidents"],
  layer_responses: ["应急响应（进行中）", "Emergency responses (open)"], tasks: ["任务", "Tasks"],
  details: ["详情", "Details"], click_feature: ["点击地图要素查看详情", "Click a feature for its details"],
  streets: ["街道", "Streets"], communities: ["社区", "Communities"], enterprises: ["企业", "Enterprises"], district: ["西城区", "Xicheng District"],
  enterprise: ["企业", "Enterprise"], factors: ["风险因素", "Risk factors"], risk_sources: ["风险源（LEC）", "Risk sources (LEC)"],
  hazards: ["安全隐患", "Hazards"], inspections: ["安全检查", "Inspections"], history: ["风险历史", "Risk history"],
  by_industry: ["按行业", "By industry"], venue: ["场所", "Venue"], actual: ["实际人数", "Actual"], forecast: ["预测人数", "Forecast"],
  threshold: ["阈值", "Threshold"], capacity: ["最大承载", "Capacity"], lifecycle: ["预警生命周期", "Warning lifecycle"],
  source: ["数据源", "Source"], table: ["表", "Table"], last_record: ["最新记录", "Last record"], last_commit: ["最近入湖", "Last commit"],
  lag: ["积压", "Lag"], rows_today: ["今日行数", "Rows today"], rejects: ["拒收", "Rejects"], reasons: ["拒收原因", "Reject reasons"], rows: ["总行数", "Rows"],
  run: ["执行", "Run"], tables: ["数据表", "Tables"], role: ["角色", "Role"], department: ["部门", "Department"], disabled: ["停用", "Disabled"],
  locked_logins: ["登录锁定", "Locked logins"], lock_key: ["账户或地址", "Account or address"], failures: ["失败次数", "Failures"], locked_until: ["锁定至", "Locked until"], unlock: ["解锁", "Unlock"], no_locks: ["当前没有被锁定的账户或地址", "No account or address is locked"],
  add_user: ["新增用户", "Add user"], save: ["保存", "Save"], delete: ["删除", "Delete"], new_password: ["新密码", "New password"],
  state: ["状态", "State"], time: ["时间", "Time"], message: ["内容", "Message"], name: ["名称", "Name"], address: ["地址", "Address"],
  export_csv: ["导出 CSV", "CSV"], export_png: ["导出图片", "PNG"], target: ["目标", "Target"], value: ["当前", "Value"],
  new_warning: ["新预警", "New warning"], updated: ["更新于", "Updated"], id: ["编号", "Id"], category: ["类别", "Category"], status: ["状态", "Status"], description: ["描述", "Description"],
  crowd_source_crowd_counts: ["人数为场所自身计数（电子围栏、闸机），即该场所预警所依据的数", "People: the venue's own count (fence or gates), the count its warnings are raised on"],
  crowd_source_mobile_signal: ["人数为场所所在网格的手机信令人数，即该场所预警所依据的数", "People: the mobile-signal count of its grid cells, the count its warnings are raised on"],
  range_reversed: ["结束日期早于开始日期，请重新选择", "The end date is before the start date: choose again"],
  big_screen: ["大屏", "Wall"], normal_screen: ["常规", "Normal"], big_screen_hint: ["大屏模式：字号随屏幕放大，图表铺满", "Video-wall mode: type scaled to the screen, charts filling it"],
  age: ["距今", "Age"], observed: ["实测值", "Observed"], forecast_value: ["预测值", "Forecast"], people: ["人数", "People"], sql_rows: ["行", "rows"], truncated: ["（已截断）", "(truncated)"], kpi_met: ["已达成", "Met"], kpi_in_progress: ["推进中", "In progress"], kpi_no_data: ["暂无数据", "No data yet"], state_raised: ["发布", "raised"], state_escalated: ["升级", "escalated"], state_lowered: ["降级", "lowered"], state_cleared: ["解除", "cleared"], ok: ["正常", "OK"], stale: ["滞后", "Stale"], confirm_delete: ["确认删除用户？", "Delete this user?"],
  ent_levels: ["显示等级", "Levels shown"], all_levels: ["全部等级", "All levels"], high_levels: ["仅红、橙", "Red and orange only"],
  of_total: ["共", "of"], clustered: ["按街道汇总，放大地图或点击街道查看单位", "Totals per street: zoom in or click a street to see the units"],
  enterprise_page: ["企业风险画像", "Risk portrait"], crowd_page: ["客流详情", "Crowd flow"], units: ["家", "units"],
  extracts: ["数据提取", "Extracts"], format: ["格式", "Format"], schedule: ["计划", "Schedule"], next_run: ["下次运行", "Next run"],
  last_run: ["上次运行", "Last run"], file: ["文件（下载）", "File (download)"], run_now: ["立即运行", "Run now"], running: ["运行中…", "Running…"],
  period: ["数据周期", "Period"], rows_out: ["行数", "Rows"], trigger: ["触发方式", "Trigger"], failed: ["失败", "Failed"],
  never_run: ["尚未运行", "Not run yet"], on_demand: ["按需", "On demand"], history_of: ["运行记录：", "Runs of"],
  path: ["数据路径", "Path"], instance: ["运行实例", "Instance"], newest_event: ["最新事件时间", "Newest event"], lag_words: ["滞后", "Behind by"], behind: ["积压（条）", "Records behind"],
  note: ["说明", "Note"], caught_up: ["已追平", "Caught up"], event_gap: ["数据时间差", "Data-time gap"],
  level_ok: ["正常", "OK"], level_warn: ["注意", "Warning"], level_error: ["告警", "Alarm"], level_unknown: ["未上报", "Not reported"],
  path_warnings_engine: ["预警引擎", "Warning engine"], path_warnings_sink: ["预警入湖", "Warnings → lake"], path_models: ["模型运行", "Model runner"],
  path_query: ["查询层", "Query layer"], query_sql: ["SQL 分析接口", "SQL access"], note_not_reported: ["未上报新鲜度：无法判断是否滞后", "Reports no freshness: whether it lags is unknown"],
  note_waiting: ["等待首次上报", "Waiting for its first report"], note_no_registry: ["未上报新鲜度", "Reports no freshness"],
  health_ok: ["数据健康：全部正常", "Data health: all paths OK"], health_warn: ["数据健康：有数据路径需要注意", "Data health: some paths need attention"],
  health_error: ["数据健康：有数据路径严重滞后", "Data health: some paths are far behind"], health_unknown: ["数据健康：暂无新鲜度数据", "Data health: no freshness reported"],
  paths_unknown: ["条路径未上报新鲜度，显示为灰色，不计入", "paths report no freshness: grey, not counted"],
  event_time: ["事件时间", "Event time"], processed_at: ["处理于", "processed"], not_live: ["非实时", "Not live"],
  not_live_n: ["条非实时（事件时间早于", "not live (event time before"], paths_card: ["数据新鲜度（各数据路径）", "Data freshness (every path)"],
  no_extracts: ["暂无可见的提取任务（在 citybrain.yaml 的 extracts.definitions 中定义，部门用户只看到本部门的）", "No extracts to show (define them under extracts.definitions in citybrain.yaml; a department's users see their own)"],
};
// Field names of the map's details panel and the enterprise page.
const fields: Record<string, [string, string]> = {
  id: ["编号", "Id"], name: ["名称", "Name"], name_zh: ["名称", "Name"], name_en: ["英文名称", "Name (en)"], kind: ["类型", "Kind"], level: ["等级", "Level"],
  capacity_people: ["容纳人数", "Capacity (people)"], area_m2: ["面积（m²）", "Area (m²)"], certified_on: ["认定日期", "Certified on"], address: ["地址", "Address"],
  street_code: ["街道", "Street"], located: ["位置", "Located"], industry: ["行业", "Industry"], score: ["风险评分", "Risk score"], top_factors_zh: ["主要风险因素", "Main risk factors"],
  top_factors_en: ["主要风险因素", "Main risk factors"], warning_level: ["预警等级", "Warning level"], warning_state: ["预警状态", "Warning state"],
  zone: ["片区", "Zone"], floor_area_m2: ["建筑面积（m²）", "Floor area (m²)"], staff: ["人员", "Staff"], warn_depth_m: ["警戒水深（m）", "Warning depth (m)"],
  sensor_id: ["传感器", "Sensor"], value: ["最新读数", "Latest reading"], unit: ["单位", "Unit"], alarm: ["报警", "Alarm"], observed_at: ["观测时间", "Observed at"],
  site_kind: ["监测点类型", "Site kind"], normal_min: ["正常下限", "Normal min"], normal_max: ["正常上限", "Normal max"], category: ["类别", "Category"],
  title: ["标题", "Title"], description: ["描述", "Description"], received_at: ["接警时间", "Received at"], people: ["人数", "People"],
  window_start: ["统计时间", "Counted at"], credit_code: ["统一社会信用代码", "Credit code"], employees: ["从业人数", "Employees"],
  has_liability_insurance: ["安责险", "Liability insurance"], deadline: ["整改期限", "Deadline"], rectified_at: ["整改时间", "Rectified at"],
  status: ["状态", "Status"], found_at: ["发现时间", "Found at"], result: ["结论", "Result"], hazards_found: ["发现隐患", "Hazards found"], notes: ["备注", "Notes"],
  inspected_at: ["检查时间", "Inspected at"], count: ["数量", "Count"],
  rainstorm: ["暴雨预警", "Rainstorm"], waterlogging: ["内涝预警", "Waterlogging"], lifeline: ["生命线预警", "Lifeline"],
  red: ["红色", "Red"], orange: ["橙色", "Orange"], yellow: ["黄色", "Yellow"], blue: ["蓝色", "Blue"],
  incidents: ["应急警情", "Incidents"], plans: ["应急预案", "Plans"], digitized_plans: ["已数字化预案", "Digitized plans"], drills: ["演练与培训", "Drills and trainings"],
  collisions: ["交通事故", "Collisions"], injured: ["受伤人数", "Injured"], killed: ["死亡人数", "Killed"], depth_m: ["水深（m）", "Depth (m)"],
  pct_capacity: ["承载率（%）", "Of capacity (%)"], pct_free_flow: ["车速占畅行车速（%）", "Of free-flow speed (%)"], speed_kmh: ["车速（km/h）", "Speed (km/h)"],
  free_flow_kmh: ["畅行车速（km/h）", "Free-flow speed (km/h)"], road_name: ["道路", "Road"], owner_name: ["责任主体", "Owner"], revision: ["版本", "Revision"],
  revised_at: ["修订时间", "Revised at"], digitized: ["已数字化", "Digitized"], held_at: ["时间", "Held at"], owner_kind: ["主体类型", "Owner kind"],
  responses: ["启动响应", "Responses"], response_tasks: ["响应任务", "Tasks"], acked_within_5min_pct: ["5 分钟内确认（%）", "Acknowledged within 5 min (%)"],
  median_ack_min: ["确认用时中位数（分钟）", "Median time to acknowledge (min)"], escalations: ["升级次数", "Escalations"], failed_deliveries: ["投递失败", "Failed deliveries"],
  at: ["时间", "At"], event: ["事件", "Event"], subject_name_zh: ["对象", "Subject"], plan_id: ["预案", "Plan"], plan_level: ["响应等级", "Level"],
  person_name: ["责任人", "Person"], channel: ["渠道", "Channel"], detail_zh: ["说明", "Detail"],
  opened_at: ["开始时间", "Opened at"], acknowledged: ["已确认任务", "Acknowledged tasks"],
  plan_month: ["计划月份", "Plan month"], planned: ["计划检查", "Planned"], done: ["已检查", "Done"], done_pct: ["完成率（%）", "Done (%)"],
  inspectors: ["检查人员", "Inspectors"], hazards_per_100: ["每百次检查发现隐患", "Hazards per 100 inspections"], inspector_name: ["检查人员", "Inspector"],
  inspector_id: ["人员编号", "Inspector id"], overdue_visits: ["逾期未检", "Overdue visits"], inspections: ["检查次数", "Inspections"],
  hazards_due: ["到期隐患", "Hazards due"], rectified_on_time_pct: ["按期整改率（%）", "Rectified on time (%)"], still_open: ["仍未整改", "Still open"],
  participants: ["参与人数", "Participants"], contractor: ["施工单位", "Contractor"], started_on: ["开工日期", "Started"], planned_end_on: ["计划完工", "Planned end"],
};
export function fieldName(k: string): string { const e = fields[k]; return e ? (lang === "zh" ? e[0] : e[1]) : k; }
// Values of the schemas' enums, in words.
const values: Record<string, [string, string]> = {
  red: ["红色", "Red"], orange: ["橙色", "Orange"], yellow: ["黄色", "Yellow"], blue: ["蓝色", "Blue"],
  indoor: ["室内", "indoor"], outdoor: ["室外", "outdoor"], class_i: ["Ⅰ类", "class I"], class_ii: ["Ⅱ类", "class II"], class_iii: ["Ⅲ类", "class III"],
  railway_station: ["火车站", "railway station"], commercial_district: ["商圈", "commercial district"], scenic_area: ["景区", "scenic area"],
  hospital: ["医院", "hospital"], school: ["学校", "school"], stadium: ["体育场馆", "stadium"], park: ["公园", "park"], other: ["其他", "other"],
  small: ["小型站", "small station"], micro: ["微型站", "micro station"], low_courtyard: ["低洼院落", "low courtyard"], underpass: ["下凹桥区", "underpass"],
  road_dip: ["道路低点", "road dip"], pressure: ["压力", "pressure"], flow: ["流量", "flow"], water_level: ["水位", "water level"], gas: ["燃气", "gas"],
  pipe: ["管网", "pipe"], low_point: ["低点", "low point"], pump_station: ["泵站", "pump station"], major: ["重大", "major"], general: ["一般", "general"],
  activated: ["启动响应", "activated"], acknowledged: ["已确认", "acknowledged"], progress: ["进展", "progress"],
  inhibited: ["抑制", "inhibited"], silenced: ["静默", "silenced"], failed: ["投递失败", "failed"],
  unplanned: ["无适用预案", "no plan applies"], notified: ["已推送", "notified"], delivered: ["已送达", "delivered"],
  app: ["应用内", "in-app"], email: ["邮件", "e-mail"], sms: ["短信", "SMS"], wecom: ["企业微信", "WeCom"], dingtalk: ["钉钉", "DingTalk"],
  open: ["未办结", "open"], in_progress: ["办理中", "in progress"], closed: ["已办结", "closed"], rectified: ["已整改", "rectified"], overdue: ["逾期未整改", "overdue"],
  pass: ["合格", "pass"], fail: ["不合格", "fail"], rectify: ["责令整改", "rectification ordered"], north: ["北片区", "north"], centre: ["中片区", "centre"], south: ["南片区", "south"],
  fire: ["火警", "fire"], medical: ["医疗救护", "medical"], traffic: ["交通事故", "traffic"], police: ["治安", "police"],
  raised: ["发布", "raised"], escalated: ["升级", "escalated"], lowered: ["降级", "lowered"], cleared: ["解除", "cleared"],
  // Industries of the district's enterprise register, as the data writes them.
  餐饮: ["餐饮", "catering"], 零售: ["零售", "retail"], 住宿: ["住宿", "hotels"], 商务楼宇: ["商务楼宇", "office buildings"], 金融: ["金融", "finance"],
  医疗卫生: ["医疗卫生", "health care"], 教育: ["教育", "education"], 建筑施工: ["建筑施工", "construction"], 仓储物流: ["仓储物流", "warehousing and logistics"],
  加油加气站: ["加油加气站", "fuel stations"], 危险化学品经营: ["危险化学品经营", "hazardous-chemicals trade"], 文化娱乐: ["文化娱乐", "culture and entertainment"],
  商场超市: ["商场超市", "shopping malls"], 物业管理: ["物业管理", "property management"], 机动车维修: ["机动车维修", "vehicle repair"], 印刷: ["印刷", "printing"],
  其他服务业: ["其他服务业", "other services"], 危险化学品: ["危险化学品", "hazardous chemicals"],
  // Kinds of risk source (codes and the register's words).
  electrical: ["电气线路", "electrical"], 电气: ["电气", "electrical"], 电气线路: ["电气线路", "electrical wiring"], fire_load: ["可燃物集中", "fire load"],
  crowded_place: ["人员密集场所", "crowded place"], special_equipment: ["特种设备", "special equipment"], hazardous_chemicals: ["危险化学品", "hazardous chemicals"],
  lifting: ["起重吊装", "lifting"], confined_space: ["有限空间", "confined space"], fall_from_height: ["高处作业", "work at height"], 燃气: ["燃气", "gas"],
  // 12345 request categories.
  噪声扰民: ["噪声扰民", "noise"], 噪音: ["噪音", "noise"], 占道经营: ["占道经营", "street vending"], 垃圾清运: ["垃圾清运", "garbage collection"],
  违规停车: ["违规停车", "illegal parking"], 供暖问题: ["供暖问题", "heating"], 供水问题: ["供水问题", "water supply"], 道路破损: ["道路破损", "road damage"],
  路灯损坏: ["路灯损坏", "street lights"], 房屋安全: ["房屋安全", "building safety"], 物业服务: ["物业服务", "property services"], 消防隐患: ["消防隐患", "fire hazards"],
  燃气安全: ["燃气安全", "gas safety"], 燃气异味: ["燃气异味", "gas smell"], 其他: ["其他", "other"],
  hq: ["专项指挥部", "command HQ"], unit: ["生产经营单位", "business"], street: ["街道", "street"], drill: ["应急演练", "drill"],
  plan_training: ["预案培训", "plan training"], skill_training: ["技能培训", "skill training"],
  true: ["是", "yes"], false: ["否", "no"], admin: ["管理员", "admin"], leader: ["领导", "leader"], analyst: ["分析员", "analyst"], department: ["部门用户", "department"],
};
/** An enum value in words (the value itself when unknown). */
export function val(v: unknown): string { const e = values[String(v)]; return e ? (lang === "zh" ? e[0] : e[1]) : v == null ? "" : String(v); }
export function has(key: string): boolean { return key in dict; }
export function t(key: string): string { const e = dict[key]; return e ? (lang === "zh" ? e[0] : e[1]) : key; }
/** pick the zh or en of a row's field pair (name_zh/name_en, message_zh/message_en …). */
export function pick(row: Record<string, unknown>, base: string): string {
  const zh = row[base + "_zh"], en = row[base + "_en"];
  const v = lang === "zh" ? (zh ?? en) : (en || zh);
  return v == null ? "" : String(v);
}
export const levelOrder = ["red", "orange", "yellow", "blue"];
export const levelColor: Record<string, string> = { red: "#e5393b", orange: "#f28c28", yellow: "#f2c94c", blue: "#3a86ff" };
