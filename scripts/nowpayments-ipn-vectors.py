#!/usr/bin/env python3
"""Prints NOWPayments IPN signature vectors for Tests/PaymentsTests/IPNSignatureTests.swift.

The JavaScript forms come from Node itself (the two recipes in NOWPayments' docs: a recursive key sort then
`JSON.stringify(sortObject(params))`, and the older `JSON.stringify(params, Object.keys(params).sort())`, whose
replacer array also filters nested keys),
the Python form from Python's json module, so the Swift implementation is checked against the real
serialisers rather than against itself. Needs `node` and `python3`.
"""
import hashlib
import hmac
import json
import subprocess

SECRET = "test-ipn-secret"

BODIES = {
    "documented": r'''{"payment_id":5077125051,"parent_payment_id":null,"invoice_id":6121311734,"payment_status":"finished","pay_address":"0xd1cDE08A07cD25adEbEd35c3867a59228C09B606","payin_extra_id":null,"price_amount":10,"price_currency":"usd","pay_amount":0.00414231,"actually_paid":0.00414231,"actually_paid_at_fiat":0,"pay_currency":"eth","order_id":"sub-42","order_description":"Channel \"Alpha\" — 30 days","purchase_id":"5312822613","outcome_amount":0.0041,"outcome_currency":"eth","payment_extra_ids":null,"fee":{"currency":"eth","depositFee":0.0000123,"withdrawalFee":0,"serviceFee":0.00002071}}''',
    # Arrays (nested objects inside), index-like keys, keys whose UTF-16 and code-point orders differ,
    # escapes, a lone surrogate, DEL, and number literals that JavaScript prints unchanged. Texts are printed
    # as they are signed (raw UTF-8, DEL included).
    "tricky": r'''{"payment_id":"7","payment_status":"partially_paid","10":"ten","9":"nine","0":"zero","01":"lead","z":1,"é":2,"😀":3,"ｚ":5,"":4,"list":[{"b":1,"a":[true,null,{"y":1,"x":2}]},[],"s"],"text":"caf\u00e9 \ud83d\ude00 — \"q\" \\ / \u0007 \u007f\t\n end","lone":"\ud800x","nested":{"10":1,"2":2,"z":{"d":0.5,"c":-1e-7},"payment_id":0},"big":123456789012345680000,"huge":1e+21,"tiny":0.0000123,"neg":-0.25}''',
}

NODE = r'''
const crypto = require('crypto');
const body = require('fs').readFileSync(0, 'utf8');
function sortObject(obj){return Object.keys(obj).sort().reduce((r,k)=>{r[k]=(obj[k]&&typeof obj[k]==='object')?sortObject(obj[k]):obj[k];return r},{})}
const params = JSON.parse(body);
const out = {};
out.recursive = JSON.stringify(sortObject(params));
out.legacy = JSON.stringify(params, Object.keys(params).sort());
for (const k of ['recursive', 'legacy']) out[k + '_sig'] = crypto.createHmac('sha512', process.argv[1]).update(out[k]).digest('hex');
process.stdout.write(JSON.stringify(out));
'''

for name, body in BODIES.items():
    node = json.loads(subprocess.run(["node", "-e", NODE, SECRET], input=body.encode(), capture_output=True, check=True).stdout)
    python_text = json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True)
    python_sig = hmac.new(SECRET.encode(), python_text.encode(), hashlib.sha512).hexdigest()
    print(f"== {name}")
    print("recursive text:", node["recursive"])
    print("recursive sig:", node["recursive_sig"])
    print("legacy text:", node["legacy"])
    print("legacy sig:", node["legacy_sig"])
    print("python text:", python_text)
    print("python sig:", python_sig)
