import sys, xml.etree.ElementTree as ET
ns={'c':'http://check.sourceforge.net/ns'}
def load(f):
    r=ET.parse(f).getroot(); rows=[]; suites={}
    for s in r.iter('{http://check.sourceforge.net/ns}suite'):
        name=s.find('c:title',ns).text
        for tc in s.findall('c:test',ns):
            d=float(tc.find('c:duration',ns).text)
            rows.append((d,name,tc.find('c:id',ns).text,tc.find('c:description',ns).text, tc.get('result')))
            suites[name]=suites.get(name,0)+d
    return rows,suites,float(r.find('c:duration',ns).text)
rows,suites,tot=load(sys.argv[1])
n=int(sys.argv[2]) if len(sys.argv)>2 else 30
from collections import Counter
print(len(rows),'tests', Counter(r[4] for r in rows), 'sum %.1f total %.1f'%(sum(x[0] for x in rows),tot))
for k,v in sorted(suites.items(),key=lambda x:-x[1])[:n]: print('%7.2f %s'%(v,k))
print()
for x in sorted(rows,reverse=True)[:n]: print('%7.2f %-22s %-40s %s %s'%x)
