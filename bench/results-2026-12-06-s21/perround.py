import re,subprocess,sys
txt=open(sys.argv[1]).read().split('# round ')[1:]
for i,r in enumerate(txt):
    open('/tmp/r.txt','w').write('# x\n# round 1\n'+r.split('\n',1)[1])
    out=subprocess.run(['python3','/work/main/bench/quant_peers_table.py','/tmp/r.txt'],capture_output=True,text=True).stdout
    for l in out.splitlines():
        if l.startswith('    '): continue
        m=re.search(r'^(.*?)rounds.*0\.95: +(\S+) +0\.99: +(\S+)(.*)',l)
        if m:
            a=m.group(1).replace('--ef-construction','efC').replace('--index-cache','').replace('--quant','')
            a=re.sub(r'/tmp/\S+','',a)
            print(i+1, '%-70s'%a.strip()[:70], m.group(2), m.group(3), m.group(4).strip().replace('vs best peer:',''))
