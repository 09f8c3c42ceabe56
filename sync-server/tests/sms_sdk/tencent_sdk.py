"""The official Tencent Cloud SMS SDK (tencentcloud-sdk-python-sms), driven by
sms_providers.rs.

Reads one JSON object on stdin, prints one JSON object on stdout.

  send: SendSms (2021-01-11) through the SDK against a local test server (plain http),
        TC3-HMAC-SHA256 as the SDK signs by default. In: endpoint ("127.0.0.1:PORT"),
        secret_id, secret_key, region, phone_number_set, sdk_app_id, sign_name, template_id,
        template_param_set (or null), session_context. Out: {"ok": true, "response": <the
        SDK's parsed answer>} or {"ok": false, "error": "..."}.
  sign: the SDK's own TC3 signer (AbstractClient._get_tc3_signature) over a request as a
        server received it. In: endpoint, secret_id, secret_key, region, host, content_type,
        timestamp, body. Out: {"authorization"}.
"""
import json
import sys
from datetime import datetime, timezone

from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client


def client(a):
    http_profile = HttpProfile(endpoint=a["endpoint"], protocol="http", reqTimeout=10)
    profile = ClientProfile(httpProfile=http_profile)
    cred = credential.Credential(a["secret_id"], a["secret_key"])
    return sms_client.SmsClient(cred, a["region"], profile)


def send(a):
    c = client(a)
    req = models.SendSmsRequest()
    req.PhoneNumberSet = a["phone_number_set"]
    req.SmsSdkAppId = a["sdk_app_id"]
    req.TemplateId = a["template_id"]
    req.SignName = a["sign_name"]
    req.TemplateParamSet = a.get("template_param_set")
    req.SessionContext = a["session_context"]
    try:
        response = c.SendSms(req)
        return {"ok": True, "response": json.loads(response.to_json_string())}
    except Exception as e:  # TencentCloudSDKException for Response.Error
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def sign(a):
    c = client(a)
    req = RequestInternal(a["host"], "POST", "/")
    req.header["Content-Type"] = a["content_type"]
    req.header["Host"] = a["host"]
    req.header["X-TC-Timestamp"] = str(a["timestamp"])
    req.data = a["body"]
    date = datetime.fromtimestamp(a["timestamp"], timezone.utc).strftime("%Y-%m-%d")
    signature = c._get_tc3_signature(None, req, date, "sms", a["secret_key"])
    auth = "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=content-type;host, Signature=%s" % (
        a["secret_id"], date, "sms", signature)
    return {"authorization": auth}


def main():
    mode = sys.argv[1]
    args = json.loads(sys.stdin.read())
    out = {"send": send, "sign": sign}[mode](args)
    sys.stdout.write(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
