import json, urllib.request, sys
url = sys.argv[1]
def gql(q, v=None):
    req = urllib.request.Request(url, data=json.dumps({"query": q, "variables": v or {}}).encode(), headers={"content-type": "application/json"})
    r = json.load(urllib.request.urlopen(req))
    if r.get("errors"): raise SystemExit(json.dumps(r["errors"]))
    return r["data"]
wfs = [("orders", ["new", "paid", "shipped", "done"], [("pay","new","paid"),("ship","paid","shipped"),("finish","shipped","done"),("loop","done","new")]),
       ("acme::docs", ["draft", "review", "approved"], [("submit","draft","review"),("approve","review","approved"),("reopen","approved","draft")])]
for wid, places, trs in wfs:
    gql("mutation($i:WorkflowDefinitionInput!){createWorkflow(input:$i){id}}", {"i": {"id": wid, "name": wid, "places": places, "initialPlace": places[0],
        "transitions": [{"id": t, "fromPlaces": [f], "toPlace": to} for t, f, to in trs]}})
ids = []
for n in range(12):
    wid, places, trs = wfs[n % 2]
    t = gql("mutation($i:TokenCreateInput!){createToken(input:$i){id}}", {"i": {"workflowId": wid, "data": {"n": n, "title": "t%d" % n}, "metadata": {"team": "a%d" % (n % 3)}, "triggeredBy": "maker", "idempotencyKey": "create-%d" % n}})["createToken"]["id"]
    ids.append(t)
    # fire n times around the cycle, with data on some, keys on some
    for k in range(n * 3):
        tr = trs[k % len(trs)][0]
        inp = {"tokenId": t, "transitionId": tr, "triggeredBy": "user%d" % (k % 2)}
        if k % 3 == 0: inp["data"] = {"step": k}
        if k % 4 == 0: inp["idempotencyKey"] = "fire-%d-%d" % (n, k)
        gql("mutation($i:TransitionFireInput!){fireTransition(input:$i){revision}}", {"i": inp})
    if n % 2 == 0:
        gql("mutation($i:TokenUpdateInput!){updateToken(input:$i){revision}}", {"i": {"tokenId": t, "metadata": {"updated": True}, "data": {"u": n}}})

json.dump(ids, open("ids.json", "w"))
