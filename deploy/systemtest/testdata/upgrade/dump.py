import json, urllib.request, sys
url = sys.argv[1]
def gql(q, v=None):
    req = urllib.request.Request(url, data=json.dumps({"query": q, "variables": v or {}}).encode(), headers={"content-type": "application/json"})
    r = json.load(urllib.request.urlopen(req))
    if r.get("errors"): raise SystemExit(json.dumps(r["errors"]))
    return r["data"]
ids = json.load(open("ids.json"))
tf = """id workflowId place data metadata createdAt updatedAt revision natsSequence natsSubject natsTimestamp
 history { timestamp transition fromPlace toPlace data }
 transitionHistory { fromPlace toPlace transitionId timestamp triggeredBy natsSequence metadata }"""
toks = [gql("query($id:String!){ token(id:$id){ %s } }" % tf, {"id": i})["token"] for i in ids]
evs = {}
for wf in ["orders", "acme::docs"]:
    evs[wf] = gql("query($w:String!){ events(workflowId:$w, first:1000){ eventType workflowId tokenId place fromPlace toPlace transitionId timestamp triggeredBy natsSequence revision sequence } }", {"w": wf})["events"]
json.dump({"tokens": toks, "events": evs}, open("expected.json", "w"), indent=1, sort_keys=True)
print(len(toks), sum(len(v) for v in evs.values()), sum(len(t["transitionHistory"]) for t in toks))
