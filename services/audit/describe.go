package audit

import (
	"strings"
)

// Lang is the language of an export's column headers, title and
// description column.
type Lang int

// Languages of exports.
const (
	English Lang = iota
	Chinese
)

// ParseLang reads an export's language: "" or "en" English, "zh-CN"
// Chinese (simplified); ok is false for anything else.
func ParseLang(s string) (l Lang, ok bool) {
	switch s {
	case "", "en":
		return English, true
	case "zh-CN":
		return Chinese, true
	}
	return English, false
}

// phrase is a word or phrase in both languages.
type phrase struct{ en, zh string }

// apiPhrases describe the APIs that are not "<object>.<verb>" (or read
// better said whole).
var apiPhrases = map[string]phrase{
	"authenticate":               {"Authenticate a person for an application", "应用认证用户身份"},
	"authenticate.finger_bypass": {"Authenticate without fingerprint (bypass)", "免指纹认证"},
	"change_password":            {"Change own password", "修改本人密码"},
	"caller.denied":              {"Refuse an application's call", "拒绝应用调用"},
	"admin.login":                {"Administrator sign-in", "管理员登录"},
	"admin.logout":               {"Administrator sign-out", "管理员退出"},
	"admin.refused":              {"Refuse an administrator's request", "拒绝管理员操作"},
	"admin.denied":               {"Refuse an administrator's request", "拒绝管理员操作"},
	"admin.auth":                 {"Check an administrator's token", "校验管理员令牌"},
	"admin.appointed":            {"Appoint an administrator", "任命管理员"},
	"admin.tokens_revoked":       {"Revoke an administrator's tokens", "撤销管理员令牌"},
	"admin.membership":           {"Change an administrator's membership", "变更管理员归属"},
	"sso.login":                  {"Single sign-on", "单点登录"},
	"sso.password.change.verify": {"Verify the password before changing it", "修改密码前验证身份"},
	"sso.profile.verify":         {"Verify the password before editing the profile", "修改个人信息前验证身份"},
	"account.lockout":            {"Lock an account after failed sign-ins", "登录失败次数过多锁定账号"},
	"account.associate":          {"Associate an application account", "关联应用账号"},
	"user.locked":                {"Lock a person", "锁定用户"},
	"user.status_changed":        {"Change a person's status", "变更用户状态"},
	"user.update_self":           {"Edit own profile", "修改本人信息"},
	"user.certificate.bind":      {"Bind a certificate to a person", "绑定用户证书"},
	"user.certificate.unbind":    {"Unbind a person's certificate", "解绑用户证书"},
	"user.totp.enrol":            {"Enrol an authenticator app", "登记动态口令"},
	"user.totp.remove":           {"Remove an authenticator app", "移除动态口令"},
	"user.totp.reset":            {"Reset a person's authenticator app", "重置用户动态口令"},
	"session.create":             {"Open a single sign-on session", "建立单点登录会话"},
	"session.end":                {"End a single sign-on session", "结束单点登录会话"},
	"ticket.issue":               {"Issue a service ticket", "签发服务票据"},
	"ticket.validate":            {"Validate a service ticket", "验证服务票据"},
	"ticket.proxy":               {"Issue a proxy ticket", "签发代理票据"},
	"ticket.pgt.revoke":          {"Revoke a proxy-granting ticket", "撤销代理授权票据"},
	"logout.delivery":            {"Deliver a single sign-out", "发送单点退出通知"},
	"oidc.token":                 {"Issue OpenID Connect tokens", "签发 OpenID Connect 令牌"},
	"oidc.refresh":               {"Refresh OpenID Connect tokens", "刷新 OpenID Connect 令牌"},
	"oidc.revoke":                {"Revoke an OpenID Connect token", "撤销 OpenID Connect 令牌"},
	"oidc.userinfo":              {"Read user information (OpenID Connect)", "读取用户信息（OpenID Connect）"},
	"oidc.code.replayed":         {"Refuse a replayed authorization code", "拒绝重放的授权码"},
	"authz.check":                {"Check a permission", "权限校验"},
	"authz.batch_check":          {"Check permissions", "批量权限校验"},
	"authz.explain":              {"Explain a permission", "权限来源说明"},
	"authz.subjects":             {"List who holds a permission", "查询权限持有人"},
	"authz.sod_breach":           {"Separation-of-duty breach", "职责分离冲突"},
	"directory.get_person":       {"Read a person (information sharing)", "查询人员信息（信息共享）"},
	"directory.list_people":      {"List people (information sharing)", "查询人员列表（信息共享）"},
	"directory.list_orgs":        {"List organisations (information sharing)", "查询机构列表（信息共享）"},
	"export":                     {"Export", "导出"},
	"archive":                    {"Archive audit records", "归档审计日志"},
	"keys.rotate":                {"Rotate the encryption keys", "轮换加密密钥"},
	"keys.reencrypt":             {"Re-encrypt data with the current key", "使用当前密钥重新加密数据"},
	"password.wrap":              {"Protect stored password hashes", "加固密码存储"},
	"provision.dead_letter":      {"Give up a delivery to a business system", "放弃向业务系统投递"},
	"provision.retry":            {"Retry deliveries to a business system", "重试向业务系统投递"},
	"provision.batch":            {"Deliver a batch to a business system", "向业务系统批量同步"},
	"sync.skipped.resolve":       {"Resolve a skipped change", "处理跳过的同步变更"},
	"finger.bypass":              {"Set fingerprint bypass", "设置免指纹"},
	"app.rotate_secret":          {"Rotate an application's secret", "轮换应用密钥"},
	"app.forget":                 {"Forget a deleted application's data", "清除已删除应用的数据"},
	"grant.appoint":              {"Appoint a delegated administrator", "委派管理员"},
	"org.resend":                 {"Resend an organisation to business systems", "向业务系统重新同步机构"},
	"link.associate":             {"Associate an application account", "关联应用账号"},
	"user.set_password":          {"Set a person's password", "设置用户密码"},
	"user.reset_password":        {"Reset a person's password", "重置用户密码"},
	"user.clear_password":        {"Remove a person's local password (a directory keeps it)", "清除用户本地密码（由目录管理）"},
	"user.appointment_password":  {"Set an appointed administrator's password", "设置受委派管理员密码"},
	"sso.password.change":        {"Change own password (single sign-on page)", "修改本人密码（单点登录页面）"},
	"password.change":            {"Change own password", "修改本人密码"},
	"exclusion.create":           {"Create a role exclusion", "创建角色互斥规则"},
	"exclusion.delete":           {"Delete a role exclusion", "删除角色互斥规则"},
}

// objects name what "<object>.<verb>" APIs act on.
var objects = map[string]phrase{
	"user": {"person", "用户"}, "org": {"organisation", "机构"}, "group": {"group", "用户组"},
	"app": {"application", "应用"}, "role": {"role", "角色"}, "grant": {"grant", "授权"},
	"resource": {"resource", "资源"}, "permission": {"permission", "权限"}, "permissions": {"permissions", "权限"},
	"service": {"service", "服务"}, "subscription": {"subscription", "同步订阅"}, "session": {"session", "会话"},
	"ticket": {"ticket", "票据"}, "link": {"account link", "账号关联"}, "account": {"account", "账号"},
	"finger": {"fingerprint", "指纹"}, "keys": {"keys", "密钥"}, "certificate": {"certificate", "证书"},
	"exclusion": {"role exclusion", "角色互斥规则"}, "subjects": {"holders", "持有人"}, "centre": {"centre", "中心"},
	"model": {"permission model", "权限模型"}, "views": {"views", "视图"}, "admin": {"administrator", "管理员"},
}

// verbs name what was done (English imperative, Chinese verb).
var verbs = map[string]phrase{
	"create": {"Create", "创建"}, "update": {"Update", "修改"}, "delete": {"Delete", "删除"}, "move": {"Move", "移动"},
	"set_status": {"Set the status of", "设置状态："}, "lock": {"Lock", "锁定"}, "unlock": {"Unlock", "解锁"},
	"revoke": {"Revoke", "撤销"}, "appoint": {"Appoint", "委派"}, "rotate": {"Rotate", "轮换"}, "enrol": {"Enrol", "登记"},
	"enroll": {"Enrol", "登记"}, "remove": {"Remove", "移除"}, "reset": {"Reset", "重置"}, "bind": {"Bind", "绑定"},
	"unbind": {"Unbind", "解绑"}, "issue": {"Issue", "签发"}, "validate": {"Validate", "验证"}, "put": {"Set", "设置"},
	"resend": {"Resend", "重新同步"}, "associate": {"Associate", "关联"}, "end": {"End", "结束"}, "list": {"List", "查询"},
	"get": {"Read", "查看"}, "forget": {"Forget", "清除"}, "login": {"Sign in as", "登录"}, "logout": {"Sign out as", "退出"},
	"import": {"Import", "导入"}, "export": {"Export", "导出"}, "retry": {"Retry", "重试"}, "grant": {"Grant", "授予"},
	"locked": {"Lock", "锁定"}, "unlocked": {"Unlock", "解锁"},
	"add_member": {"Add a member to", "添加成员："}, "remove_member": {"Remove a member from", "移除成员："},
}

// resultWords are the results in words.
var resultWords = map[string]phrase{
	"success": {"success", "成功"}, "failure": {"failed", "失败"}, "denied": {"refused", "拒绝"},
	"incomplete": {"incomplete", "未完成"},
}

// actionPhrase is what api did, in l: its own phrase, else its verb and
// object ("user.create": "Create person"), else the api itself.
func actionPhrase(api string, l Lang) string {
	if p, ok := apiPhrases[api]; ok {
		return p.in(l)
	}
	if i := strings.LastIndexByte(api, '.'); i > 0 {
		obj, verb := api[:i], api[i+1:]
		if j := strings.LastIndexByte(obj, '.'); j >= 0 {
			obj = obj[j+1:] // "identity.user.create": the last object
		}
		o, ok1 := objects[obj]
		v, ok2 := verbs[verb]
		if ok1 && ok2 {
			if l == Chinese {
				return v.zh + o.zh
			}
			return v.en + " " + o.en
		}
	}
	if api == "" {
		return ""
	}
	if i := strings.LastIndexByte(api, '/'); i >= 0 && i < len(api)-1 {
		// a gRPC method ("uias.audit.v1.AuditQueryService/QueryRecords"):
		// an administrator's read
		m := api[i+1:]
		if l == Chinese {
			return "调用接口 " + m
		}
		return methodWords(m)
	}
	if l == Chinese {
		return "调用 " + api
	}
	return "Call " + api
}

// methodWords is a method's name in words: "QueryRecords": "Query
// records".
func methodWords(m string) string {
	var b strings.Builder
	for i, r := range m {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (p phrase) in(l Lang) string {
	if l == Chinese {
		return p.zh
	}
	return p.en
}

// Describe is the record's description (the maritime design's 操作描述,
// 004 2.1.7): who did what to whom and how it ended, in l. actorName and
// subjectName are the people's names when known ("" otherwise: the
// record's ids stand in); a person subject's login kept in the record
// (detail login) names them when identity no longer does.
func Describe(r *Record, actorName, subjectName string, l Lang) string {
	var b strings.Builder
	who := actorName
	if who == "" {
		who = r.Actor
	}
	if who == "" && r.AppID != "" {
		who = r.AppID
		if l == Chinese {
			who = "应用 " + who
		} else {
			who = "application " + who
		}
	}
	what := subjectName
	if what == "" {
		what = r.Subject
		if login := r.Detail["login"]; login != "" && strings.HasPrefix(r.Subject, "user:") {
			what = login + " (" + r.Subject + ")"
		}
	}
	action := actionPhrase(r.API, l)
	res, ok := resultWords[r.Result]
	result := r.Result
	if ok {
		result = res.in(l)
	}
	if l == Chinese {
		if who != "" {
			b.WriteString(who)
			b.WriteString(" ")
		}
		b.WriteString(action)
		if what != "" && what != who {
			b.WriteString(" ")
			b.WriteString(what)
		}
		if f := r.Detail["fields"]; f != "" {
			b.WriteString("（字段：" + f + "）")
		}
		if result != "" {
			b.WriteString("：" + result)
		}
		if r.Reason != "" && r.Reason != "OK" {
			b.WriteString("（" + r.Reason + "）")
		}
		return b.String()
	}
	b.WriteString(action)
	if what != "" && what != who {
		b.WriteString(" ")
		b.WriteString(what)
	}
	if f := r.Detail["fields"]; f != "" {
		b.WriteString(" (fields: " + f + ")")
	}
	if who != "" {
		b.WriteString(" by ")
		b.WriteString(who)
	}
	if result != "" {
		b.WriteString(": " + result)
	}
	if r.Reason != "" && r.Reason != "OK" {
		b.WriteString(" (" + r.Reason + ")")
	}
	return b.String()
}

// headerNames are the Chinese names of the export columns (English: the
// column keys themselves).
var headerNames = map[string]string{
	"seq": "序号", "time": "操作日期", "type": "类型", "component": "组件", "serial": "流水号", "app_id": "应用标识",
	"api": "操作类别", "actor": "操作者", "subject": "操作对象", "org": "机构", "result": "结果", "reason": "原因",
	"duration_ms": "耗时（毫秒）", "client_ip": "客户端地址", "detail": "详情", "event_id": "事件标识",
	"actor_name": "管理员名称", "description": "操作描述", "origin": "所属日志（中心）",
}

// headerIn is header in l.
func headerIn(header []string, l Lang) []string {
	if l != Chinese {
		return header
	}
	out := make([]string, len(header))
	for i, h := range header {
		out[i] = headerNames[h]
		if out[i] == "" {
			out[i] = h
		}
	}
	return out
}
