"""The official Aliyun SMS SDK (alibabacloud-dysmsapi20170525), driven by sms_providers.rs.

Reads one JSON object on stdin, prints one JSON object on stdout.

  send: SendSms through the SDK against a local test server (plain http), V3 signature as the
        SDK does by default. In: endpoint ("127.0.0.1:PORT"), access_key_id,
        access_key_secret, user_agent, phone, sign_name, template_code, template_param (or
        null), out_id. Out: {"ok": true, "body": <the SDK's parsed answer>} or
        {"ok": false, "error": "..."}.
  sign: the SDK's own signer (Utils.get_authorization) over a request as a server received
        it. In: method, pathname, query (decoded, {name: value}), headers ({name: value}, the
        signed ones), payload_hash, access_key_id, access_key_secret. Out: {"authorization"}.
"""
import json
import sys

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.utils import Utils
from darabonba.request import DaraRequest
from darabonba.runtime import RuntimeOptions


def send(a):
    config = open_api_models.Config(
        access_key_id=a["access_key_id"],
        access_key_secret=a["access_key_secret"],
        endpoint=a["endpoint"],
        protocol="http",
        # The SDK signs its user-agent; the same one as ours, through the SDK's own way of
        # setting a header on every request.
        global_parameters=open_api_models.GlobalParameters(
            headers={"user-agent": a["user_agent"]}
        ),
    )
    client = Client(config)
    request = sms_models.SendSmsRequest(
        phone_numbers=a["phone"],
        sign_name=a["sign_name"],
        template_code=a["template_code"],
        template_param=a.get("template_param"),
        out_id=a["out_id"],
    )
    runtime = RuntimeOptions(autoretry=False, read_timeout=10000, connect_timeout=5000)
    try:
        response = client.send_sms_with_options(request, runtime)
        return {"ok": True, "body": response.body.to_map()}
    except Exception as e:  # the SDK's error for a refused request
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def sign(a):
    request = DaraRequest()
    request.method = a["method"]
    request.pathname = a["pathname"]
    request.query = a["query"]
    request.headers = a["headers"]
    auth = Utils.get_authorization(
        request,
        "ACS3-HMAC-SHA256",
        a["payload_hash"],
        a["access_key_id"],
        a["access_key_secret"],
    )
    return {"authorization": auth}


def main():
    mode = sys.argv[1]
    args = json.loads(sys.stdin.read())
    out = {"send": send, "sign": sign}[mode](args)
    sys.stdout.write(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
