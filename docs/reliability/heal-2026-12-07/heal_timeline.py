# Per run: seconds after the power-on (the heal) at which each item was last seen not ready in the
# drill's status polls (galera: MariaDB not answering on the returning node; rabbit: its broker not serving;
# ctl-N:api: HAProxy marks that API down; sched: a scheduler/conductor/engine reported down).
# usage: python3 heal_timeline.py REPORT-DIR/*run*.json
import json, re, sys, glob
for f in sorted(sys.argv[1:]):
    d = json.load(open(f)); r = d['recording']
    t = {e['kind']: e['t'] for e in r['events'] if e['kind'] in ('fault', 'heal')}
    heal = t['heal']; last = {}
    for e in r['events']:
        if e['kind'] != 'status': continue
        x = e['text']; rel = e['t'] - heal
        for key, pat in (('galera', r'MariaDB does not answer on (ctl-\d)'), ('rabbit', r'rabbit@(ctl-\d) is not serving'),
                         ('sched', r'(nova-scheduler|nova-conductor|cinder-scheduler|heat-engine) is down')):
            if re.search(pat, x): last[key] = rel
        for m in re.finditer(r'(ctl-\d) is DOWN (\w+) in ([\w, ]+?) \(seen', x):
            for api in m.group(3).split(', '):
                last[f"{m.group(1)}:{api}"] = rel
        if e['text'] == 'healthy': last['HEALTHY'] = rel
    h = d['scores']['figures']['heal_to_healthy_s']
    print(f.split('/')[-1], 'heal_to_healthy %.0f' % h)
    print('   ', ', '.join(f"{k} {v:.0f}" for k, v in sorted(last.items(), key=lambda kv: kv[1])))
