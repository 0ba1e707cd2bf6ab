import sys, xml.etree.ElementTree as ET
ns={'c':'http://check.sourceforge.net/ns'}
def load(f):
    r=ET.parse(f).getroot(); d={}
    for s in r.iter('{http://check.sourceforge.net/ns}suite'):
        name=s.find('c:title',ns).text
        for tc in s.findall('c:test',ns):
            k=(name,tc.find('c:fn',ns).text.split(':')[0],tc.find('c:id',ns).text,tc.find('c:iteration',ns).text)
            d[k]=d.get(k,0)+float(tc.find('c:duration',ns).text)
    return d
a=load(sys.argv[1]); b=load(sys.argv[2])
print(len(a),len(b),'sum a %.1f b %.1f'%(sum(a.values()),sum(b.values())))
rows=sorted(((a[k]-b.get(k,0),a[k],b.get(k,0),k) for k in a),reverse=True)
n=int(sys.argv[3]) if len(sys.argv)>3 else 40
for r in rows[:n]: print('%6.2f %6.2f %6.2f %s'%(r[0],r[1],r[2],' '.join(r[3])))
