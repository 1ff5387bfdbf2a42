/*
 * Apache Curator's recipes, unmodified (Debian's libcurator-*-java with
 * libzookeeper-java), against a ZooKeeper-protocol ensemble reached through
 * Curator's normal connection string (host:port,host:port,host:port).
 *
 * Usage: java CuratorCheck <connectString> [check ...]
 *
 * Every check prints one line, `PASS <name>: <detail>` or `FAIL <name>:
 * <detail>`; the program ends with `DONE pass=N fail=M` and exits 1 if any
 * check failed (2 on a bad command line, 3 when the whole run passed its
 * deadline). Every wait is bounded: each check by CHECK_MS, the run by
 * TOTAL_MS.
 *
 * Killing servers: the checks that need a server gone (the leader's server
 * in the leader checks, the cache client's server for the reconnect) print
 * `CMD kill <clientPort>` or `CMD start <clientPort>` and wait for the
 * driver (test/integration/curator.test.ts) to answer `OK` (or `ERR <why>`)
 * on stdin. Started with --no-driver, such a check fails at once instead.
 */
import java.lang.reflect.Method;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public final class CuratorCheck {
  static final long CHECK_MS = 60_000;
  static final long TOTAL_MS = 120_000;
  static final int SESSION_MS = 8_000;
  static final int CONNECT_MS = 5_000;

  static String connect;
  static String base;
  static boolean driver = true;
  static final BlockingQueue<String> replies = new LinkedBlockingQueue<>();
  /** Client ports of servers a check killed and has not started again (started after the check, pass or fail). */
  static final Set<Integer> down = Collections.synchronizedSet(new TreeSet<>());
  /** What the running check opened, closed (last first) when it ends or times out. */
  static final List<AutoCloseable> opened = Collections.synchronizedList(new ArrayList<>());

  static final class CheckFailed extends Exception {
    private static final long serialVersionUID = 1L;

    CheckFailed(String detail) {
      super(detail);
    }
  }

  interface Check {
    String run() throws Exception;
  }

  static void fail(String detail) throws CheckFailed {
    throw new CheckFailed(detail);
  }

  static synchronized void out(String line) {
    System.out.println(line);
    System.out.flush();
  }

  static void info(String line) {
    out("INFO " + line);
  }

  public static void main(String[] args) throws Exception {
    List<String> rest = new ArrayList<>(Arrays.asList(args));
    if (rest.remove("--no-driver")) driver = false;
    if (rest.isEmpty()) {
      System.err.println("usage: CuratorCheck [--no-driver] <host:port,...> [check ...]");
      System.exit(2);
    }
    connect = rest.remove(0);
    Set<String> only = new HashSet<>(rest);
    base = "/curator-check-" + Long.toHexString(System.currentTimeMillis());

    Thread stdin = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
        for (String l; (l = r.readLine()) != null; ) replies.add(l.trim());
      } catch (Exception ignored) {
        // The driver went away: commands then time out.
      }
    }, "stdin");
    stdin.setDaemon(true);
    stdin.start();
    Thread watchdog = new Thread(() -> {
      try {
        Thread.sleep(TOTAL_MS);
        out("FAIL run: the whole run passed its " + TOTAL_MS / 1000 + " s deadline");
        out("DONE deadline");
        Runtime.getRuntime().halt(3);
      } catch (InterruptedException ignored) {
        // Finished in time.
      }
    }, "watchdog");
    watchdog.setDaemon(true);
    watchdog.start();

    Map<String, Check> checks = new java.util.LinkedHashMap<>();
    checks.put("mutex", CuratorCheck::mutex);
    checks.put("semaphore", CuratorCheck::semaphore);
    checks.put("shared-count", CuratorCheck::sharedCount);
    checks.put("distributed-queue", CuratorCheck::distributedQueue);
    checks.put("leader-latch", CuratorCheck::leaderLatch);
    checks.put("leader-selector", CuratorCheck::leaderSelector);
    checks.put("curator-cache", CuratorCheck::curatorCache);
    checks.put("persistent-node", CuratorCheck::persistentNode);
    checks.put("service-discovery", CuratorCheck::serviceDiscovery);
    for (String name : only) {
      if (!checks.containsKey(name)) {
        System.err.println("unknown check " + name + "; known: " + checks.keySet());
        System.exit(2);
      }
    }
    info("connect " + connect + " base " + base);
    int pass = 0;
    int failed = 0;
    for (Map.Entry<String, Check> e : checks.entrySet()) {
      if (!only.isEmpty() && !only.contains(e.getKey())) continue;
      if (runCheck(e.getKey(), e.getValue())) pass++;
      else failed++;
    }
    watchdog.interrupt();
    out("DONE pass=" + pass + " fail=" + failed);
    // Curator's and ZooKeeper's non-daemon threads of closed clients may linger.
    Runtime.getRuntime().halt(failed == 0 ? 0 : 1);
  }

  static boolean runCheck(String name, Check check) {
    long start = System.nanoTime();
    ExecutorService runner = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "check-" + name);
      t.setDaemon(true);
      return t;
    });
    String line;
    boolean ok = false;
    Future<String> f = runner.submit(check::run);
    try {
      String detail = f.get(CHECK_MS, TimeUnit.MILLISECONDS);
      line = "PASS " + name + ": " + detail;
      ok = true;
    } catch (TimeoutException e) {
      f.cancel(true);
      line = "FAIL " + name + ": timed out after " + CHECK_MS / 1000 + " s";
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      line = c instanceof CheckFailed
          ? "FAIL " + name + ": " + c.getMessage()
          : "FAIL " + name + ": " + describe(c);
    } catch (InterruptedException e) {
      line = "FAIL " + name + ": interrupted";
    }
    runner.shutdownNow();
    closeOpened();
    for (Integer port : new ArrayList<>(down)) {
      try {
        command("start " + port);
      } catch (Exception e) {
        line = "FAIL " + name + ": could not start :" + port + " again after the check: " + e.getMessage();
        ok = false;
      }
    }
    long ms = (System.nanoTime() - start) / 1_000_000;
    out(line + " (" + ms + " ms)");
    return ok;
  }

  static String describe(Throwable t) {
    StringBuilder sb = new StringBuilder(t.toString());
    StackTraceElement[] st = t.getStackTrace();
    for (int i = 0; i < Math.min(4, st.length); i++) sb.append(" at ").append(st[i]);
    return sb.toString();
  }

  static void closeOpened() {
    List<AutoCloseable> all;
    synchronized (opened) {
      all = new ArrayList<>(opened);
      opened.clear();
    }
    Collections.reverse(all);
    for (AutoCloseable c : all) {
      try {
        c.close();
      } catch (Exception ignored) {
        // Closing after a failure: nothing more to learn.
      }
    }
  }

  static <T extends AutoCloseable> T track(T c) {
    opened.add(c);
    return c;
  }

  // ---------------------------------------------------------------- helpers

  static CuratorFramework client() throws Exception {
    CuratorFramework c = CuratorFrameworkFactory.builder()
        .connectString(connect)
        .sessionTimeoutMs(SESSION_MS)
        .connectionTimeoutMs(CONNECT_MS)
        .retryPolicy(new ExponentialBackoffRetry(100, 10, 1000))
        .build();
    track(c);
    c.start();
    if (!c.blockUntilConnected(20, TimeUnit.SECONDS)) fail("a Curator client did not connect within 20 s");
    return c;
  }

  static List<CuratorFramework> clients(int n) throws Exception {
    List<CuratorFramework> out = new ArrayList<>();
    for (int i = 0; i < n; i++) out.add(client());
    return out;
  }

  /**
   * n clients connected to at least two different servers, so that killing
   * any one server leaves a participant that keeps its session's connection
   * (the old leader's client reconnects and goes to the back of the line).
   */
  static List<CuratorFramework> spanningClients(int n) throws Exception {
    List<CuratorFramework> cs = clients(n);
    for (int tries = 0; tries < 40 && distinctServers(cs) < 2; tries++) {
      CuratorFramework last = cs.remove(cs.size() - 1);
      last.close();
      cs.add(client());
    }
    if (distinctServers(cs) < 2) fail("could not spread " + n + " clients over two servers");
    return cs;
  }

  static int distinctServers(List<CuratorFramework> cs) throws Exception {
    Set<Integer> ports = new HashSet<>();
    for (CuratorFramework c : cs) ports.add(serverPort(c));
    ports.remove(-1);
    return ports.size();
  }

  /** The client port of the server this client's ZooKeeper handle is connected to (-1: none). */
  static int serverPort(CuratorFramework c) throws Exception {
    ZooKeeper zk = c.getZookeeperClient().getZooKeeper();
    Method m = ZooKeeper.class.getDeclaredMethod("testableRemoteSocketAddress");
    m.setAccessible(true);
    SocketAddress a = (SocketAddress) m.invoke(zk);
    return a instanceof InetSocketAddress ? ((InetSocketAddress) a).getPort() : -1;
  }

  /** The client ports of the connect string's servers, in its order. */
  static List<Integer> ports() {
    List<Integer> out = new ArrayList<>();
    for (String hp : connect.split(",")) out.add(Integer.valueOf(hp.substring(hp.lastIndexOf(':') + 1).trim()));
    return out;
  }

  /** A four-letter word's answer from the server with this client port ("" if it does not answer). */
  static String fourLetterWord(int port, String word) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
      s.setSoTimeout(2000);
      s.getOutputStream().write(word.getBytes(StandardCharsets.US_ASCII));
      return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    } catch (Exception e) {
      return "";
    }
  }

  /** The client port of the ensemble's leader (from `srvr`'s Mode), waiting up to 20 s for one. */
  static int quorumLeaderPort() throws Exception {
    AtomicInteger found = new AtomicInteger(-1);
    waitUntil(() -> {
      for (int port : ports()) {
        if (fourLetterWord(port, "srvr").contains("Mode: leader")) {
          found.set(port);
          return true;
        }
      }
      return false;
    }, 20_000);
    if (found.get() < 0) fail("no server says `Mode: leader` to srvr");
    return found.get();
  }

  /** A client connected (through the normal connect string) to the server with this client port. */
  static CuratorFramework clientOn(int port) throws Exception {
    for (int tries = 0; tries < 60; tries++) {
      CuratorFramework c = client();
      if (serverPort(c) == port) return c;
      c.close();
    }
    fail("60 clients in a row did not connect to :" + port);
    return null;
  }

  static long sessionId(CuratorFramework c) throws Exception {
    return c.getZookeeperClient().getZooKeeper().getSessionId();
  }

  /** Asks the driver to kill or start the server with this client port, and waits for its answer. */
  static void command(String cmd) throws Exception {
    if (!driver) fail("needs the driver to `" + cmd + "` (started with --no-driver)");
    replies.clear();
    out("CMD " + cmd);
    String reply = replies.poll(60, TimeUnit.SECONDS);
    if (reply == null) fail("the driver did not answer `" + cmd + "` within 60 s");
    if (!reply.equals("OK")) fail("the driver could not `" + cmd + "`: " + reply);
    String[] words = cmd.split(" ");
    if (words[0].equals("kill")) down.add(Integer.valueOf(words[1]));
    else down.remove(Integer.valueOf(words[1]));
    info(cmd + " done");
  }

  static boolean waitUntil(BooleanSupplier cond, long ms) throws InterruptedException {
    long deadline = System.nanoTime() + ms * 1_000_000;
    for (;;) {
      if (cond.getAsBoolean()) return true;
      if (System.nanoTime() > deadline) return false;
      Thread.sleep(20);
    }
  }

  /** Waits until cond has held continuously for holdMs (within ms in all). */
  static boolean waitStable(BooleanSupplier cond, long holdMs, long ms) throws InterruptedException {
    long deadline = System.nanoTime() + ms * 1_000_000;
    long since = -1;
    for (;;) {
      long now = System.nanoTime();
      if (cond.getAsBoolean()) {
        if (since < 0) since = now;
        if (now - since >= holdMs * 1_000_000) return true;
      } else {
        since = -1;
      }
      if (now > deadline) return false;
      Thread.sleep(20);
    }
  }

  /** A condition that may throw; a throw counts as false. */
  interface Probe {
    boolean test() throws Exception;
  }

  static BooleanSupplier quietly(Probe p) {
    return () -> {
      try {
        return p.test();
      } catch (Exception e) {
        return false;
      }
    };
  }

  static List<String> children(CuratorFramework c, String path) throws Exception {
    try {
      List<String> l = new ArrayList<>(c.getChildren().forPath(path));
      Collections.sort(l);
      return l;
    } catch (KeeperException.NoNodeException e) {
      return List.of();
    }
  }

  /** Runs n tasks on their own threads and waits (bounded) for all of them; the first error is thrown. */
  static void parallel(int n, long ms, IndexedTask task) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(n);
    track(pool::shutdownNow);
    List<Future<Object>> fs = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      final int idx = i;
      fs.add(pool.submit(() -> {
        task.run(idx);
        return null;
      }));
    }
    long deadline = System.nanoTime() + ms * 1_000_000;
    try {
      for (Future<Object> f : fs) {
        long left = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
        try {
          f.get(left, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
          fail("workers still running after " + ms + " ms");
        } catch (ExecutionException e) {
          if (e.getCause() instanceof Exception) throw (Exception) e.getCause();
          throw e;
        }
      }
    } finally {
      pool.shutdownNow();
    }
  }

  interface IndexedTask {
    void run(int i) throws Exception;
  }

  /** Ends a client's session on the server (not just in the client): attaches a second handle to it and closes that. */
  static void expireSession(CuratorFramework c) throws Exception {
    ZooKeeper zk = c.getZookeeperClient().getZooKeeper();
    long id = zk.getSessionId();
    byte[] pw = zk.getSessionPasswd();
    CountDownLatch connected = new CountDownLatch(1);
    ZooKeeper other = new ZooKeeper(connect, SESSION_MS, (WatchedEvent e) -> {
      if (e.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
    }, id, pw);
    try {
      if (!connected.await(15, TimeUnit.SECONDS))
        fail("a second handle could not attach to session 0x" + Long.toHexString(id));
    } finally {
      other.close(10_000);
    }
  }

  // ---------------------------------------------------------------- checks

  /** InterProcessMutex: 8 workers on 4 clients, 15 acquisitions each, some reentrant. */
  static String mutex() throws Exception {
    String path = base + "/mutex";
    int nClients = 4;
    int perClient = 2;
    int rounds = 15;
    List<CuratorFramework> cs = clients(nClients);
    AtomicInteger holders = new AtomicInteger();
    AtomicInteger maxHolders = new AtomicInteger();
    AtomicInteger unguarded = new AtomicInteger();
    AtomicInteger acquired = new AtomicInteger();
    AtomicInteger timeouts = new AtomicInteger();
    List<String> errors = Collections.synchronizedList(new ArrayList<>());
    parallel(nClients * perClient, 60_000, (i) -> {
      InterProcessMutex m = new InterProcessMutex(cs.get(i % nClients), path);
      for (int r = 0; r < rounds; r++) {
        if (!m.acquire(20, TimeUnit.SECONDS)) {
          timeouts.incrementAndGet();
          continue;
        }
        try {
          if (r % 5 == 0) {
            if (m.acquire(5, TimeUnit.SECONDS)) m.release();
            else errors.add("worker " + i + ": reentrant acquire failed");
          }
          int h = holders.incrementAndGet();
          maxHolders.accumulateAndGet(h, Math::max);
          int v = unguarded.get(); // read-modify-write that only the lock makes safe
          Thread.sleep(1);
          unguarded.set(v + 1);
          holders.decrementAndGet();
          acquired.incrementAndGet();
        } finally {
          m.release();
        }
        if (m.isOwnedByCurrentThread()) errors.add("worker " + i + ": still owns the lock after release");
      }
    });
    int total = nClients * perClient * rounds;
    List<String> left = children(cs.get(0), path);
    String detail = String.format("%d workers on %d clients x %d acquisitions: acquired %d, timeouts %d, max holders %d, guarded counter %d/%d, lock nodes left %s",
        nClients * perClient, nClients, rounds, acquired.get(), timeouts.get(), maxHolders.get(), unguarded.get(), total, left);
    if (maxHolders.get() != 1 || acquired.get() != total || unguarded.get() != total || timeouts.get() > 0 || !left.isEmpty() || !errors.isEmpty())
      fail(detail + (errors.isEmpty() ? "" : "; " + errors));
    return detail;
  }

  /** InterProcessSemaphoreV2 with 3 leases: 8 workers, 10 leases each, each held 20 ms. */
  static String semaphore() throws Exception {
    String path = base + "/semaphore";
    int nClients = 4;
    int perClient = 2;
    int rounds = 10;
    int maxLeases = 3;
    List<CuratorFramework> cs = clients(nClients);
    AtomicInteger inUse = new AtomicInteger();
    AtomicInteger maxInUse = new AtomicInteger();
    AtomicInteger acquired = new AtomicInteger();
    AtomicInteger returned = new AtomicInteger();
    AtomicInteger timeouts = new AtomicInteger();
    parallel(nClients * perClient, 60_000, (i) -> {
      InterProcessSemaphoreV2 s = new InterProcessSemaphoreV2(cs.get(i % nClients), path, maxLeases);
      for (int r = 0; r < rounds; r++) {
        Lease lease = s.acquire(20, TimeUnit.SECONDS);
        if (lease == null) {
          timeouts.incrementAndGet();
          continue;
        }
        acquired.incrementAndGet();
        try {
          int n = inUse.incrementAndGet();
          maxInUse.accumulateAndGet(n, Math::max);
          Thread.sleep(20);
          inUse.decrementAndGet();
        } finally {
          s.returnLease(lease);
          returned.incrementAndGet();
        }
      }
    });
    int total = nClients * perClient * rounds;
    List<String> leases = children(cs.get(0), path + "/leases");
    List<String> locks = children(cs.get(0), path + "/locks");
    String detail = String.format("%d workers x %d leases of %d: acquired %d, returned %d, timeouts %d, max in use %d, lease nodes left %s, lock nodes left %s",
        nClients * perClient, rounds, maxLeases, acquired.get(), returned.get(), timeouts.get(), maxInUse.get(), leases, locks);
    if (maxInUse.get() > maxLeases || maxInUse.get() < 2 || acquired.get() != total || returned.get() != total || !leases.isEmpty() || !locks.isEmpty())
      fail(detail);
    return detail;
  }

  /** SharedCount: 8 threads on 4 clients add 25 each with trySetCount retries; the total is exact. */
  static String sharedCount() throws Exception {
    String path = base + "/count";
    int nClients = 4;
    int perClient = 2;
    int adds = 25;
    List<CuratorFramework> cs = clients(nClients);
    List<SharedCount> counts = new ArrayList<>();
    for (CuratorFramework c : cs) {
      SharedCount sc = track(new SharedCount(c, path, 0));
      sc.start();
      counts.add(sc);
    }
    AtomicInteger attempts = new AtomicInteger();
    parallel(nClients * perClient, 60_000, (i) -> {
      SharedCount sc = counts.get(i % nClients);
      for (int k = 0; k < adds; k++) {
        for (;;) {
          attempts.incrementAndGet();
          VersionedValue<Integer> v = sc.getVersionedValue();
          if (sc.trySetCount(v, v.getValue() + 1)) break;
        }
      }
    });
    int total = nClients * perClient * adds;
    byte[] raw = cs.get(0).getData().forPath(path);
    int stored = raw.length == 4 ? ByteBuffer.wrap(raw).getInt() : -1;
    boolean converged = waitUntil(() -> counts.stream().allMatch(c -> c.getCount() == total), 10_000);
    String seen = counts.stream().map(c -> String.valueOf(c.getCount())).collect(Collectors.joining(","));
    String detail = String.format("%d threads x %d increments: stored %d (expected %d), %d attempts, every SharedCount sees [%s]",
        nClients * perClient, adds, stored, total, attempts.get(), seen);
    if (stored != total || !converged) fail(detail);
    return detail;
  }

  /** DistributedQueue (with a lock path): 2 producers put 150 items, 3 consumers take each exactly once. */
  static String distributedQueue() throws Exception {
    String path = base + "/queue";
    String locks = base + "/queue-locks";
    int perProducer = 75;
    int producers = 2;
    int consumers = 3;
    QueueSerializer<String> ser = new QueueSerializer<String>() {
      @Override
      public byte[] serialize(String item) {
        return item.getBytes(StandardCharsets.UTF_8);
      }

      @Override
      public String deserialize(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
      }
    };
    Map<String, AtomicInteger> seen = new ConcurrentHashMap<>();
    AtomicIntegerArray byConsumer = new AtomicIntegerArray(consumers);
    AtomicInteger consumed = new AtomicInteger();
    for (int i = 0; i < consumers; i++) {
      final int idx = i;
      QueueConsumer<String> consumer = new QueueConsumer<String>() {
        @Override
        public void consumeMessage(String message) {
          seen.computeIfAbsent(message, k -> new AtomicInteger()).incrementAndGet();
          byConsumer.incrementAndGet(idx);
          consumed.incrementAndGet();
        }

        @Override
        public void stateChanged(CuratorFramework client, ConnectionState newState) {}
      };
      DistributedQueue<String> q = track(QueueBuilder.builder(client(), consumer, ser, path).lockPath(locks).buildQueue());
      q.start();
    }
    List<DistributedQueue<String>> ps = new ArrayList<>();
    for (int i = 0; i < producers; i++) {
      DistributedQueue<String> q = track(QueueBuilder.builder(client(), null, ser, path).putInBackground(false).buildQueue());
      q.start();
      ps.add(q);
    }
    parallel(producers, 40_000, (p) -> {
      for (int k = 0; k < perProducer; k++) ps.get(p).put("item-" + p + "-" + k);
    });
    int total = producers * perProducer;
    waitUntil(() -> consumed.get() >= total, 40_000);
    waitStable(() -> consumed.get() >= total, 1000, 5000); // late duplicates would show here
    CuratorFramework c = client();
    boolean drained = waitUntil(quietly(() -> children(c, path).isEmpty() && children(c, locks).isEmpty()), 10_000);
    List<String> missing = new ArrayList<>();
    List<String> twice = new ArrayList<>();
    for (int p = 0; p < producers; p++) {
      for (int k = 0; k < perProducer; k++) {
        String item = "item-" + p + "-" + k;
        AtomicInteger n = seen.get(item);
        if (n == null) missing.add(item);
        else if (n.get() != 1) twice.add(item + " x" + n.get());
      }
    }
    String detail = String.format("%d items from %d producers, consumed %d by %d consumers %s; missing %d %s, more than once %s; queue and lock nodes %s",
        total, producers, consumed.get(), consumers, byConsumer, missing.size(), missing.stream().limit(5).collect(Collectors.toList()), twice,
        drained ? "all gone" : "left: " + children(c, path).size() + " items, " + children(c, locks).size() + " locks");
    if (consumed.get() != total || !missing.isEmpty() || !twice.isEmpty() || !drained) fail(detail);
    return detail;
  }

  /** LeaderLatch: 3 participants; the leader's server is killed; leadership moves; exactly one leader. */
  static String leaderLatch() throws Exception {
    String path = base + "/latch";
    List<CuratorFramework> cs = spanningClients(3);
    List<LeaderLatch> latches = new ArrayList<>();
    AtomicIntegerArray gained = new AtomicIntegerArray(cs.size());
    AtomicIntegerArray lost = new AtomicIntegerArray(cs.size());
    for (int i = 0; i < cs.size(); i++) {
      final int idx = i;
      LeaderLatch l = track(new LeaderLatch(cs.get(i), path, "p" + i));
      l.addListener(new LeaderLatchListener() {
        @Override
        public void isLeader() {
          gained.incrementAndGet(idx);
        }

        @Override
        public void notLeader() {
          lost.incrementAndGet(idx);
        }
      });
      l.start();
      latches.add(l);
    }
    BooleanSupplier oneLeader = () -> latches.stream().filter(LeaderLatch::hasLeadership).count() == 1;
    if (!waitStable(oneLeader, 500, 15_000)) fail("no single leader among 3 participants: " + latchState(latches, cs));
    int old = leaderIndex(latches);
    BooleanSupplier allAgree = quietly(() -> {
      String leader = latches.get(0).getLeader().getId();
      for (LeaderLatch l : latches) {
        if (!l.getLeader().getId().equals(leader) || l.getParticipants().size() != latches.size()) return false;
      }
      return true;
    });
    if (!waitUntil(allAgree, 10_000)) fail("participants disagree on the leader: " + latchState(latches, cs));
    if (!latches.get(0).getLeader().getId().equals("p" + old))
      fail("getLeader() says " + latches.get(0).getLeader().getId() + " but p" + old + " has leadership");
    // 1. The leader's server dies. The leader gives up leadership while SUSPENDED; its client
    // reconnects to another server within the session timeout (a quorum is up), so its
    // session and its latch node (the lowest) survive, and Curator 5.4's LeaderLatch,
    // re-reading the children on RECONNECTED, leads again: leadership returns to it, as
    // on ZooKeeper. (Had its session been lost, another participant would lead.)
    int port = serverPort(cs.get(old));
    boolean wasQuorumLeader = fourLetterWord(port, "srvr").contains("Mode: leader");
    long oldSession = sessionId(cs.get(old));
    String before = latchState(latches, cs);
    command("kill " + port);
    if (!waitUntil(() -> lost.get(old) >= 1, 15_000))
      fail("p" + old + " kept leadership after its server :" + port + " died (no notLeader): " + latchState(latches, cs));
    if (!waitStable(oneLeader, 1000, 30_000))
      fail("after killing p" + old + "'s server :" + port + " there is no single leader: " + latchState(latches, cs));
    boolean survived = sessionId(cs.get(old)) == oldSession;
    int afterKill = leaderIndex(latches);
    if (!survived)
      fail("p" + old + "'s session 0x" + Long.toHexString(oldSession) + " was lost when its server :" + port + " died, although two servers were up and it had " + SESSION_MS + " ms to reconnect: " + latchState(latches, cs));
    if (afterKill != old)
      fail("after killing p" + old + "'s server :" + port + " p" + old + "'s session and latch node survived but p" + afterKill + " leads: " + latchState(latches, cs));
    command("start " + port);
    if (!waitUntil(allAgree, 20_000) || !waitStable(oneLeader, 1000, 10_000))
      fail("after restarting :" + port + " the participants do not agree on one leader: " + latchState(latches, cs));
    // 2. The leader's session is lost (expired on the server): its latch node goes, the
    // next participant leads, and the old leader rejoins at the back with a new session.
    int second = leaderIndex(latches);
    String middle = latchState(latches, cs);
    expireSession(cs.get(second));
    BooleanSupplier moved = () -> oneLeader.getAsBoolean() && leaderIndex(latches) != second;
    if (!waitStable(moved, 1000, 30_000))
      fail("after p" + second + "'s session expired leadership did not settle on one other participant: " + latchState(latches, cs));
    int third = leaderIndex(latches);
    if (!waitUntil(allAgree, 20_000) || !waitStable(moved, 1000, 10_000))
      fail("after p" + second + "'s session expired the participants do not agree on one leader: " + latchState(latches, cs));
    return String.format("before %s; killed :%d (leader p%d's server, the ensemble's %s): p%d gave up leadership, its session survived, p%d leads again; after restarting %s; p%d's session expired: leadership moved to p%d, %s; isLeader counts %s, notLeader counts %s",
        before, port, old, wasQuorumLeader ? "leader" : "follower", old, afterKill, middle, second, third, latchState(latches, cs), gained, lost);
  }

  static String ZKPathsParent(LeaderLatch l) {
    String p = l.getOurPath();
    return p == null ? base + "/latch" : p.substring(0, p.lastIndexOf('/'));
  }

  static int leaderIndex(List<LeaderLatch> latches) {
    for (int i = 0; i < latches.size(); i++) if (latches.get(i).hasLeadership()) return i;
    return -1;
  }

  static String latchState(List<LeaderLatch> latches, List<CuratorFramework> cs) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < latches.size(); i++) {
      String port;
      try {
        port = String.valueOf(serverPort(cs.get(i)));
      } catch (Exception e) {
        port = "?";
      }
      if (i > 0) sb.append(", ");
      String ours = latches.get(i).getOurPath();
      sb.append("p").append(i).append("@:").append(port).append(latches.get(i).hasLeadership() ? " leader" : "")
          .append(" ").append(ours == null ? "-" : ours.substring(ours.length() - 10));
    }
    sb.append("]");
    for (CuratorFramework c : cs) {
      try {
        List<String> nodes = new ArrayList<>();
        for (String n : children(c, ZKPathsParent(latches.get(0)))) nodes.add(n.substring(n.length() - 10));
        Collections.sort(nodes);
        return sb.append(" latch nodes ").append(nodes).toString();
      } catch (Exception e) {
        // Try the next client.
      }
    }
    return sb.toString();
  }

  /** LeaderSelector (autoRequeue): 3 participants; the leader's server is killed; leadership moves; never two leaders. */
  static String leaderSelector() throws Exception {
    String path = base + "/selector";
    // The participants sit on the two followers, at least one on each: whichever leads,
    // killing its server (a follower) leaves another participant's connection alone, so
    // leadership must move. (Killing the ensemble's leader would drop every client while
    // the ensemble elects, and all three would queue again in any order.)
    int quorumLeader = quorumLeaderPort();
    List<Integer> followers = new ArrayList<>(ports());
    followers.remove(Integer.valueOf(quorumLeader));
    List<CuratorFramework> cs = new ArrayList<>();
    for (int i = 0; i < 3; i++) cs.add(clientOn(followers.get(i % followers.size())));
    AtomicInteger leading = new AtomicInteger();
    AtomicInteger maxLeading = new AtomicInteger();
    AtomicInteger current = new AtomicInteger(-1);
    AtomicIntegerArray terms = new AtomicIntegerArray(cs.size());
    List<LeaderSelector> selectors = new ArrayList<>();
    for (int i = 0; i < cs.size(); i++) {
      final int idx = i;
      LeaderSelector s = new LeaderSelector(cs.get(i), path, new LeaderSelectorListenerAdapter() {
        @Override
        public void takeLeadership(CuratorFramework client) throws Exception {
          maxLeading.accumulateAndGet(leading.incrementAndGet(), Math::max);
          current.set(idx);
          terms.incrementAndGet(idx);
          try {
            for (;;) Thread.sleep(60_000); // lead until interrupted (connection SUSPENDED/LOST)
          } finally {
            current.compareAndSet(idx, -1);
            leading.decrementAndGet();
          }
        }
      });
      track(s::close);
      s.setId("p" + i);
      s.autoRequeue();
      s.start();
      selectors.add(s);
    }
    if (!waitStable(() -> current.get() >= 0 && leading.get() == 1, 500, 15_000))
      fail("no participant took leadership within 15 s");
    int old = current.get();
    int port = serverPort(cs.get(old));
    command("kill " + port);
    if (!waitStable(() -> current.get() >= 0 && current.get() != old && leading.get() == 1, 1000, 30_000))
      fail("after killing p" + old + "'s server :" + port + " leadership did not move to one other participant (leading now: p" + current.get() + ", " + leading.get() + " in takeLeadership, terms " + terms + ", participants " + selectorState(selectors, cs) + ")");
    int now = current.get();
    command("start " + port);
    BooleanSupplier settled = quietly(() -> {
      for (LeaderSelector s : selectors) {
        if (s.getParticipants().size() != selectors.size()) return false;
        if (!s.getLeader().getId().equals("p" + current.get())) return false;
      }
      return leading.get() == 1;
    });
    if (!waitStable(settled, 1000, 20_000)) {
      List<String> ids = new ArrayList<>();
      for (Participant p : selectors.get(now).getParticipants()) ids.add(p.getId() + (p.isLeader() ? "*" : ""));
      fail("after restarting :" + port + " the participants did not settle: participants " + ids + ", leading p" + current.get() + " (" + leading.get() + " in takeLeadership)");
    }
    String detail = String.format("p%d led on :%d (a follower; participants on both followers), its server killed; leadership moved to p%d; after restarting 3 participants agree on p%d; terms %s; at most %d in takeLeadership at once",
        old, port, now, current.get(), terms, maxLeading.get());
    if (maxLeading.get() != 1) fail(detail);
    return detail;
  }

  static String selectorState(List<LeaderSelector> selectors, List<CuratorFramework> cs) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < selectors.size(); i++) {
      String port;
      try {
        port = String.valueOf(serverPort(cs.get(i)));
      } catch (Exception e) {
        port = "?";
      }
      out.add("p" + i + "@:" + port + (selectors.get(i).hasLeadership() ? " leader" : ""));
    }
    for (LeaderSelector s : selectors) {
      try {
        List<String> ids = new ArrayList<>();
        for (Participant p : s.getParticipants()) ids.add(p.getId() + (p.isLeader() ? "*" : ""));
        return out + " lock queue " + ids;
      } catch (Exception e) {
        // Try the next one.
      }
    }
    return out.toString();
  }

  /** CuratorCache (one persistent recursive watch): 350 random changes, its client's server killed mid-way; it converges to the tree. */
  static String curatorCache() throws Exception {
    String root = base + "/cache";
    CuratorFramework w = client();
    w.create().creatingParentsIfNeeded().forPath(root, "root".getBytes(StandardCharsets.UTF_8));
    Random rnd = new Random(22);
    List<String> known = new ArrayList<>();
    known.add(root);
    int[] ops = {0};
    // Some of the tree exists before the cache starts.
    for (int i = 0; i < 15; i++) change(w, rnd, known, root, ops);
    // The cache's client is on the ensemble's leader, and that server is killed: every
    // client is dropped while the others elect, and the cache's session, its persistent
    // recursive watch and its contents must survive the failover.
    int quorumLeader = quorumLeaderPort();
    CuratorFramework c = clientOn(quorumLeader);
    CuratorCache cache = track(CuratorCache.build(c, root));
    AtomicInteger events = new AtomicInteger();
    CountDownLatch initialized = new CountDownLatch(1);
    cache.listenable().addListener(new CuratorCacheListener() {
      @Override
      public void event(Type type, ChildData oldData, ChildData data) {
        events.incrementAndGet();
      }

      @Override
      public void initialized() {
        initialized.countDown();
      }
    });
    cache.start();
    if (!initialized.await(15, TimeUnit.SECONDS)) fail("the cache did not initialize within 15 s");
    for (int i = 0; i < 150; i++) change(w, rnd, known, root, ops);
    int port = serverPort(c);
    long session = sessionId(c);
    command("kill " + port);
    for (int i = 0; i < 100; i++) change(w, rnd, known, root, ops);
    command("start " + port);
    for (int i = 0; i < 100; i++) change(w, rnd, known, root, ops);
    AtomicReference<String> diff = new AtomicReference<>("");
    boolean converged = waitUntil(quietly(() -> {
      Map<String, String> truth = new TreeMap<>();
      walk(w, root, truth);
      Map<String, String> cached = new TreeMap<>();
      cache.stream().forEach(d -> cached.put(d.getPath(), d.getStat().getVersion() + ":" + (d.getData() == null ? "null" : new String(d.getData(), StandardCharsets.UTF_8))));
      diff.set(diffMaps(truth, cached));
      return truth.equals(cached);
    }), 20_000);
    Map<String, String> truth = new TreeMap<>();
    walk(w, root, truth);
    boolean kept = sessionId(c) == session;
    String detail = String.format("%d changes (100 while the cache's server :%d, the ensemble's leader, was down), %d znodes, %d cache events, the cache's session %s, cache %s",
        ops[0], port, truth.size(), events.get(), kept ? "kept" : "LOST (0x" + Long.toHexString(session) + ")", converged ? "equals the tree (paths, versions, data)" : "differs: " + diff.get());
    if (!converged || !kept) fail(detail);
    return detail;
  }

  /** One random change under root: create (depth <= 3), setData or delete a leaf; retried writes may find their work done. */
  static void change(CuratorFramework w, Random rnd, List<String> known, String root, int[] ops) throws Exception {
    int kind = rnd.nextInt(10);
    ops[0]++;
    try {
      if (kind < 5 || known.size() < 3) {
        String parent = known.get(rnd.nextInt(known.size()));
        if (parent.split("/").length - root.split("/").length >= 3) parent = root;
        String p = parent + "/n" + ops[0];
        w.create().forPath(p, ("c" + ops[0]).getBytes(StandardCharsets.UTF_8));
        known.add(p);
      } else if (kind < 8) {
        String p = known.get(rnd.nextInt(known.size()));
        w.setData().forPath(p, ("s" + ops[0]).getBytes(StandardCharsets.UTF_8));
      } else {
        String p = known.get(1 + rnd.nextInt(known.size() - 1));
        if (!w.getChildren().forPath(p).isEmpty()) return;
        w.delete().forPath(p);
        known.remove(p);
      }
    } catch (KeeperException.NodeExistsException e) {
      // A create retried after a lost connection: it happened.
    } catch (KeeperException.NoNodeException e) {
      // A delete retried after a lost connection: it happened.
      known.removeIf(k -> k.equals(e.getPath()));
    }
  }

  static void walk(CuratorFramework c, String path, Map<String, String> out) throws Exception {
    Stat st = new Stat();
    byte[] data = c.getData().storingStatIn(st).forPath(path);
    out.put(path, st.getVersion() + ":" + (data == null ? "null" : new String(data, StandardCharsets.UTF_8)));
    for (String child : c.getChildren().forPath(path)) walk(c, path + "/" + child, out);
  }

  static String diffMaps(Map<String, String> truth, Map<String, String> cached) {
    List<String> d = new ArrayList<>();
    Set<String> all = new TreeSet<>(truth.keySet());
    all.addAll(cached.keySet());
    for (String k : all) {
      String t = truth.get(k);
      String c = cached.get(k);
      if (t == null) d.add(k + " only in cache (" + c + ")");
      else if (c == null) d.add(k + " missing from cache (" + t + ")");
      else if (!t.equals(c)) d.add(k + " tree " + t + " cache " + c);
    }
    return d.size() + " paths differ, first " + d.stream().limit(5).collect(Collectors.toList());
  }

  /** PersistentNode (EPHEMERAL): its session is expired on the server; the node is recreated under the new session. */
  static String persistentNode() throws Exception {
    String path = base + "/pnode";
    byte[] data = "persistent".getBytes(StandardCharsets.UTF_8);
    CuratorFramework a = client();
    CuratorFramework o = client();
    o.create().creatingParentsIfNeeded().forPath(base + "/pnode-parent-marker");
    PersistentNode node = track(new PersistentNode(a, CreateMode.EPHEMERAL, false, path, data));
    node.start();
    if (!node.waitForInitialCreate(15, TimeUnit.SECONDS)) fail("the node was not created within 15 s");
    long oldSession = sessionId(a);
    Stat st = o.checkExists().forPath(path);
    if (st == null || st.getEphemeralOwner() != oldSession)
      fail("after the first create the node's owner is " + (st == null ? "none" : "0x" + Long.toHexString(st.getEphemeralOwner())) + ", not the session 0x" + Long.toHexString(oldSession));
    CountDownLatch deleted = new CountDownLatch(1);
    o.checkExists().usingWatcher((Watcher) e -> {
      if (e.getType() == Watcher.Event.EventType.NodeDeleted) deleted.countDown();
    }).forPath(path);
    expireSession(a);
    boolean sawDelete = deleted.await(15, TimeUnit.SECONDS);
    AtomicReference<String> last = new AtomicReference<>("");
    boolean recreated = waitUntil(quietly(() -> {
      Stat s = o.checkExists().forPath(path);
      long now = sessionId(a);
      last.set(s == null ? "absent" : "owner 0x" + Long.toHexString(s.getEphemeralOwner()) + ", client session 0x" + Long.toHexString(now));
      return s != null && s.getEphemeralOwner() != oldSession && s.getEphemeralOwner() == now
          && Arrays.equals(o.getData().forPath(path), data);
    }), 30_000);
    String detail = String.format("session 0x%x expired on the server (NodeDeleted seen by another client: %s); node %s (%s)",
        oldSession, sawDelete, recreated ? "recreated with the same data by the new session" : "not recreated", last.get());
    if (!sawDelete || !recreated) fail(detail);
    return detail;
  }

  /** ServiceDiscovery: instances registered by two clients are seen by a third, vanish with their sessions and come back on re-registration. */
  static String serviceDiscovery() throws Exception {
    String path = base + "/services";
    CuratorFramework a = client();
    CuratorFramework b = client();
    CuratorFramework d = client();
    CuratorFramework watcher = client();
    ServiceDiscovery<String> da = track(ServiceDiscoveryBuilder.builder(String.class).client(a).basePath(path).build());
    ServiceDiscovery<String> db = ServiceDiscoveryBuilder.builder(String.class).client(b).basePath(path).build();
    ServiceDiscovery<String> dd = track(ServiceDiscoveryBuilder.builder(String.class).client(d).basePath(path).build());
    ServiceDiscovery<String> dw = track(ServiceDiscoveryBuilder.builder(String.class).client(watcher).basePath(path).build());
    da.start();
    db.start();
    dd.start();
    dw.start();
    da.registerService(instance("api", "a1", 8001));
    da.registerService(instance("api", "a2", 8002));
    db.registerService(instance("api", "b1", 8003));
    db.registerService(instance("worker", "w1", 9001));
    ServiceCache<String> cache = track(dw.serviceCacheBuilder().name("api").build());
    AtomicInteger cacheChanges = new AtomicInteger();
    cache.addListener(new org.apache.curator.x.discovery.details.ServiceCacheListener() {
      @Override
      public void cacheChanged() {
        cacheChanges.incrementAndGet();
      }

      @Override
      public void stateChanged(CuratorFramework client, ConnectionState newState) {}
    });
    cache.start();
    List<String> steps = new ArrayList<>();
    expectInstances(cache, dw, Set.of("a1", "a2", "b1"), Set.of("w1"), "after registering", steps);
    Collection<String> names = dw.queryForNames();
    if (!new HashSet<>(names).equals(Set.of("api", "worker"))) fail("queryForNames " + names + ", expected [api, worker]");
    // b's process "dies": its session ends without unregistering.
    b.close();
    expectInstances(cache, dw, Set.of("a1", "a2"), Set.of(), "after b's session closed", steps);
    // a's session is expired on the server: its instances vanish, and ServiceDiscovery registers them again.
    long oldSession = sessionId(a);
    expireSession(a);
    if (!waitUntil(quietly(() -> sessionId(a) != oldSession && sessionId(a) != 0), 20_000))
      fail("a did not get a new session after its session expired");
    expectInstances(cache, dw, Set.of("a1", "a2"), Set.of(), "after a's session expired and it re-registered", steps);
    dd.registerService(instance("api", "d1", 8004));
    expectInstances(cache, dw, Set.of("a1", "a2", "d1"), Set.of(), "after d registered", steps);
    dd.unregisterService(instance("api", "d1", 8004));
    expectInstances(cache, dw, Set.of("a1", "a2"), Set.of(), "after d unregistered", steps);
    ServiceInstance<String> a1 = dw.queryForInstance("api", "a1");
    if (a1 == null || a1.getPort() != 8001 || !"payload-a1".equals(a1.getPayload()))
      fail("queryForInstance(api, a1) returned " + a1);
    return String.join("; ", steps) + "; cache changed " + cacheChanges.get() + " times";
  }

  static ServiceInstance<String> instance(String name, String id, int port) throws Exception {
    return ServiceInstance.<String>builder().name(name).id(id).address("127.0.0.1").port(port).payload("payload-" + id).build();
  }

  static void expectInstances(ServiceCache<String> cache, ServiceDiscovery<String> dw, Set<String> api, Set<String> worker, String when, List<String> steps) throws Exception {
    AtomicReference<String> last = new AtomicReference<>("");
    boolean ok = waitUntil(quietly(() -> {
      Set<String> cached = cache.getInstances().stream().map(ServiceInstance::getId).collect(Collectors.toCollection(TreeSet::new));
      Set<String> queried = dw.queryForInstances("api").stream().map(ServiceInstance::getId).collect(Collectors.toCollection(TreeSet::new));
      Set<String> workers = dw.queryForInstances("worker").stream().map(ServiceInstance::getId).collect(Collectors.toCollection(TreeSet::new));
      last.set("cache " + cached + ", query api " + queried + ", query worker " + workers);
      return cached.equals(api) && queried.equals(api) && workers.equals(worker);
    }), 20_000);
    String expected = "api " + new TreeSet<>(api) + " worker " + new TreeSet<>(worker);
    if (!ok) fail(String.join("; ", steps) + (steps.isEmpty() ? "" : "; ") + when + ": expected " + expected + ", got " + last.get());
    steps.add(when + ": " + expected);
  }
}
