import sys, time
t0=time.time()
for line in sys.stdin:
    sys.stdout.write('[%7.1f] %s' % (time.time()-t0, line)); sys.stdout.flush()
