// Package channels delivers one response task to one person outside the
// responder app (issue #24, docs/response.md "Reaching people"): by e-mail
// over SMTP, through a WeCom (企业微信) or DingTalk (钉钉) group robot
// webhook that @-mentions the person by mobile number, or through an SMS
// gateway webhook. In-app delivery (SSE) is not here: it is the response
// service's own.
//
// Every channel writes zh-CN first — the Chinese title and duty text, then
// the English below them — and carries the absolute link into the responder
// app:
//
//	email     a text/plain; charset=UTF-8 MIME message, base64 body, the
//	          Subject and the recipient's name RFC 2047 encoded, and a
//	          Message-ID derived from the task and person, so a retried
//	          message keeps its id and mail clients fold the copies.
//	wecom     {"msgtype":"markdown",…} with the message, then
//	          {"msgtype":"text",…,"mentioned_mobile_list":[mobile]}: WeCom's
//	          robot document (群机器人配置说明) mentions by mobile only in text
//	          messages; markdown knows only <@userid>.
//	dingtalk  {"msgtype":"markdown",…,"at":{"atMobiles":[mobile]}} with
//	          "@mobile" in the text, as DingTalk requires for the mention to
//	          show; signed (timestamp and HMAC-SHA256 sign query parameters)
//	          when the robot's secret is configured.
//	sms       {"mobile","template","params":{level,title,url},"sign"} to the
//	          gateway, the title clipped so the text stays one short SMS.
//
// A Channel makes one attempt and says whether a failure is worth
// repeating: the *Error it returns is Temporary for network errors, time-outs,
// HTTP 5xx and 429, SMTP 4xx replies and the robots' rate-limit codes
// (WeCom 45009, DingTalk 130101), and permanent for everything a retry
// cannot change (HTTP 4xx, SMTP 5xx, a refused webhook, a person without an
// e-mail address or mobile number). Every error says, in Chinese and then
// in English, what happened and what to do next: the configuration key to
// check (response.channels.<channel>.<key>), the person's record to
// complete, or that it will be retried.
//
// Deliver retries: exponential backoff with full jitter between attempts,
// stopping at the first success, a permanent error, Retry.Max attempts or
// the end of the context, and returns every attempt so the caller can
// record one deliveries row per attempt. Delivery is at least once: an
// attempt whose answer was lost (a time-out after the server accepted)
// is repeated. The WeCom channel remembers, for the life of the process,
// a markdown message accepted whose mention was not, so its retry sends
// only the mention.
//
// Secrets (SMTP password, DingTalk secret, SMS token, the webhook URLs,
// which carry the robots' keys) are the caller's to read from the
// environment; errors name a webhook by scheme, host and path only.
package channels
