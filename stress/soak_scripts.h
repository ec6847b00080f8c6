/* soak_scripts.h - the Lua scene of ljs-soak (stress/soak.c).
 *
 * soak.c writes each body into a fresh temp directory after a generated
 * header ("-- soak: <path> version N", "local V = N" and "local PURE_LOOPS
 * = true", false under ThreadSanitizer), so every version of a file differs
 * and can say which version it is. The bodies must stay equivalent across
 * versions: the rewriter swaps them under a running scene, and the scene's
 * behaviour (and so its memory) must not depend on which version runs.
 *
 * The host steers the scripts through one entity tagged "control":
 *  - `quiet` (boolean): no script sends events while it is set, so the
 *    event queues drain and events_sent == events_delivered + events_dropped
 *    can be checked exactly;
 *  - `fault` / `fault_who` (integers): the faulty entity `fault_who` runs
 *    fault `fault` in this frame's update (1 runaway loop, 2 table memory
 *    bomb, 3 string memory bomb), so faults come on the host's wall clock;
 *  - `burst` (boolean): every storm sends its biggest burst this frame (the
 *    host asks once, early in the warm-up, so the event buffers reach their
 *    high-water mark before memory is measured).
 * Event accounting is exact only because every entity has exactly one
 * script, so no event ever has two handlers (events_delivered counts handler
 * calls, runtime/scripts/exec.c run_events). */
#ifndef LJS_SOAK_SCRIPTS_H
#define LJS_SOAK_SCRIPTS_H

/* lib/arena.lua: shared helpers, required by prey, predator and storm (a
 * change to it reloads all three). Always saved by rename: a half-written
 * module can be a valid chunk returning nothing (see stress_reload.c). */
static const char soak_src_module[] =
    "local SIZE = 1000.0\n"
    "local HALF = SIZE / 2.0\n"
    "local M = { SIZE = SIZE, ver = V }\n"
    "function M.wrap(v)\n"
    "  if v < 0.0 then return v + SIZE elseif v >= SIZE then return v - SIZE end\n"
    "  return v\n"
    "end\n"
    "-- Shortest signed distance on the wrapping axis.\n"
    "function M.delta(from, to)\n"
    "  local d = to - from\n"
    "  if d > HALF then return d - SIZE elseif d < -HALF then return d + SIZE end\n"
    "  return d\n"
    "end\n"
    "-- A boolean field of the control entity (false if there is none).\n"
    "function M.control(name)\n"
    "  local c = query('control')[1]\n"
    "  return c ~= nil and get(c, name) == true\n"
    "end\n"
    "-- True while the host drains the event queues: send nothing then.\n"
    "function M.quiet()\n"
    "  return M.control('quiet')\n"
    "end\n"
    "return M\n";

/* mover.lua: the bulk of the scene, fast form (reads in, writes out). */
static const char soak_src_mover[] =
    "local SIZE = 1000.0\n"
    "return {\n"
    "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0 },\n"
    "  tags = { 'mover' },\n"
    "  reads = { 'x', 'y', 'vx', 'vy' },\n"
    "  writes = { 'x', 'y' },\n"
    "  update = function(id, dt, x, y, vx, vy)\n"
    "    x = x + vx * dt\n"
    "    y = y + vy * dt\n"
    "    if x < 0.0 then x = x + SIZE elseif x >= SIZE then x = x - SIZE end\n"
    "    if y < 0.0 then y = y + SIZE elseif y >= SIZE then y = y - SIZE end\n"
    "    return x, y\n"
    "  end,\n"
    "}\n";

/* prey.lua: wanders; on "hit" loses hp, and at 0 tells its killer ("fed",
 * a table payload) and destroys itself. */
static const char soak_src_prey[] =
    "local A = require('lib.arena')\n"
    "local SPEED = 40.0\n"
    "return {\n"
    "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0, hp = 30, age = 0 },\n"
    "  tags = { 'prey' },\n"
    "  update = function(self, dt)\n"
    "    local id = self.id\n"
    "    if rand(id, 60) == 1 then\n"
    "      local a = rand(id) * 2.0 * math.pi\n"
    "      self.vx, self.vy = math.cos(a) * SPEED, math.sin(a) * SPEED\n"
    "    end\n"
    "    self.x = A.wrap(self.x + self.vx * dt)\n"
    "    self.y = A.wrap(self.y + self.vy * dt)\n"
    "    self.age = self.age + 1\n"
    "  end,\n"
    "  on_hit = function(self, payload, sender)\n"
    "    local hp = self.hp\n"
    "    if hp <= 0 then return end -- already dying: several hits can land in one phase\n"
    "    hp = hp - payload.damage\n"
    "    self.hp = hp\n"
    "    if hp <= 0 then\n"
    "      if not A.quiet() then send(sender, 'fed', { amount = 25, age = self.age }) end\n"
    "      destroy(self.id)\n"
    "    end\n"
    "  end,\n"
    "}\n";

/* predator.lua: picks a prey now and then (query), chases it, bites ("hit",
 * a table payload); hunger kills it, the spawner replaces it. */
static const char soak_src_predator[] =
    "local A = require('lib.arena')\n"
    "local SPEED, RANGE = 70.0, 15.0\n"
    "return {\n"
    "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0, hp = 100, target = 0, cooldown = 0, kills = 0 },\n"
    "  tags = { 'predator' },\n"
    "  update = function(self, dt)\n"
    "    local id = self.id\n"
    "    if (frame() + id) % 60 == 0 then\n"
    "      self.hp = self.hp - 4\n"
    "      if self.hp <= 0 then destroy(id) return end\n"
    "    end\n"
    "    local target = self.target\n"
    "    local tx, ty\n"
    "    if target ~= 0 then\n"
    "      tx, ty = get(target, 'x'), get(target, 'y')\n"
    "      if tx == nil then target = 0 end\n"
    "    end\n"
    "    if target == 0 and rand(id, 20) == 1 then\n"
    "      local prey = query('prey')\n"
    "      if #prey > 0 then\n"
    "        target = prey[rand(id, #prey)]\n"
    "        tx, ty = get(target, 'x'), get(target, 'y')\n"
    "      end\n"
    "    end\n"
    "    local cooldown = self.cooldown\n"
    "    if cooldown > 0 then cooldown = cooldown - 1 end\n"
    "    if target ~= 0 and tx ~= nil then\n"
    "      local dx, dy = A.delta(self.x, tx), A.delta(self.y, ty)\n"
    "      local d = math.sqrt(dx * dx + dy * dy)\n"
    "      if d <= RANGE then\n"
    "        if cooldown == 0 and not A.quiet() then\n"
    "          send(target, 'hit', { damage = rand(id, 5, 15), from = id })\n"
    "          cooldown = 10\n"
    "        end\n"
    "      elseif d > 0.001 then\n"
    "        self.vx, self.vy = dx / d * SPEED, dy / d * SPEED\n"
    "      end\n"
    "    end\n"
    "    self.x = A.wrap(self.x + self.vx * dt)\n"
    "    self.y = A.wrap(self.y + self.vy * dt)\n"
    "    self.target, self.cooldown = target, cooldown\n"
    "  end,\n"
    "  on_fed = function(self, payload, sender)\n"
    "    self.hp = math.min(100, self.hp + payload.amount)\n"
    "    self.kills = self.kills + 1\n"
    "    if self.target == sender then self.target = 0 end\n"
    "  end,\n"
    "}\n";

/* spawner.lua: every 10 frames tops prey, predators and blobs up to their
 * goals (at most BURST each) and culls a few random blobs, so entities are
 * created and destroyed all the time while the population stays bounded. */
static const char soak_src_spawner[] =
    "local SIZE, BURST = 1000.0, 40\n"
    "local function spawn_some(id, script, have, goal, speed, extra)\n"
    "  local n = 0\n"
    "  while have + n < goal and n < BURST do\n"
    "    local a = rand(id) * 2.0 * math.pi\n"
    "    local f = { x = rand(id) * SIZE, y = rand(id) * SIZE,\n"
    "                vx = math.cos(a) * speed, vy = math.sin(a) * speed }\n"
    "    if extra then f.ttl = rand(id, 30, 600) end\n"
    "    spawn(script, f)\n"
    "    n = n + 1\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "return {\n"
    "  fields = { prey_goal = 0, predator_goal = 0, blob_goal = 0, spawned = 0, culled = 0 },\n"
    "  tags = { 'spawner' },\n"
    "  update = function(self, dt)\n"
    "    local id = self.id\n"
    "    if frame() % 10 ~= 0 then return end\n"
    "    local n = spawn_some(id, 'prey', #query('prey'), self.prey_goal, 40.0, false)\n"
    "    n = n + spawn_some(id, 'predator', #query('predator'), self.predator_goal, 55.0, false)\n"
    "    local blobs = query('blob')\n"
    "    n = n + spawn_some(id, 'blob', #blobs, self.blob_goal, 30.0, true)\n"
    "    local cull = math.min(#blobs, rand(id, 0, 8))\n"
    "    for _ = 1, cull do destroy(blobs[rand(id, #blobs)]) end\n"
    "    self.spawned = self.spawned + n\n"
    "    self.culled = self.culled + cull\n"
    "  end,\n"
    "}\n";

/* blob.lua: short-lived (fast form), destroys itself when its ttl runs out. */
static const char soak_src_blob[] = "local SIZE = 1000.0\n"
                                    "return {\n"
                                    "  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0, ttl = 300 },\n"
                                    "  tags = { 'blob' },\n"
                                    "  reads = { 'x', 'y', 'vx', 'vy', 'ttl' },\n"
                                    "  writes = { 'x', 'y', 'ttl' },\n"
                                    "  update = function(id, dt, x, y, vx, vy, ttl)\n"
                                    "    if ttl <= 0 then destroy(id) return nil, nil, 0 end\n"
                                    "    return (x + vx * dt) % SIZE, (y + vy * dt) % SIZE, ttl - 1\n"
                                    "  end,\n"
                                    "}\n";

/* storm.lua: now and then a burst of 100-500 "ping" events with table
 * payloads: most to sinks (delivered), the rest to movers not tagged
 * "marked" (no handler: dropped). */
static const char soak_src_storm[] =
    "local A = require('lib.arena')\n"
    "return {\n"
    "  fields = { bursts = 0, sent = 0 },\n"
    "  tags = { 'storm' },\n"
    "  update = function(self, dt)\n"
    "    local id = self.id\n"
    "    local biggest = A.control('burst') -- the host's one-frame order: all burst, 500 each\n"
    "    if (rand(id, 120) ~= 1 and not biggest) or A.quiet() then return end\n"
    "    local sinks = query('sink')\n"
    "    local movers = query{ all = { 'mover' }, none = { 'marked' } }\n"
    "    local ns, nm = #sinks, #movers\n"
    "    local n = biggest and 500 or rand(id, 100, 500)\n"
    "    for i = 1, n do\n"
    "      if rand(id, 10) <= 7 and ns > 0 then\n"
    "        send(sinks[rand(id, ns)], 'ping', { n = i, from = id, kind = 'storm' })\n"
    "      elseif nm > 0 then\n"
    "        send(movers[rand(id, nm)], 'ping', { n = i })\n"
    "      end\n"
    "    end\n"
    "    self.bursts = self.bursts + 1\n"
    "    self.sent = self.sent + n\n"
    "  end,\n"
    "}\n";

/* sink.lua: receives pings; `ver` says which version runs (the host checks
 * it after broken versions were refused), on_reload counts reloads. */
static const char soak_src_sink[] =
    "return {\n"
    "  fields = { pings = 0, sum = 0, ver = 0, reloaded = 0 },\n"
    "  tags = { 'sink' },\n"
    "  update = function(self, dt)\n"
    "    self.ver = V\n"
    "  end,\n"
    "  on_ping = function(self, payload, sender)\n"
    "    self.pings = self.pings + 1\n"
    "    if type(payload) == 'table' and math.type(payload.n) == 'integer' then\n"
    "      self.sum = self.sum + payload.n\n"
    "    end\n"
    "  end,\n"
    "  on_reload = function(self)\n"
    "    self.reloaded = self.reloaded + 1\n"
    "  end,\n"
    "}\n";

/* faulty.lua: the faults. Random: error('boom'), a wrong-typed field write,
 * a write to another entity. On the host's command (control entity, or a
 * "poke" payload): a runaway loop (the runtime's watchdog stops it) or a
 * memory bomb (the state's limit refuses it). All must become ordinary,
 * counted script errors. */
static const char soak_src_faulty[] =
    "-- ThreadSanitizer delays the watchdog's signal until the thread enters\n"
    "-- an instrumented call, which the uninstrumented Lua VM never does in a\n"
    "-- bare loop: under TSan (PURE_LOOPS false) the loop allocates, so the\n"
    "-- signal lands in the allocator (as tests/test_script.c does).\n"
    "local function runaway()\n"
    "  local n, t = 0, nil\n"
    "  if PURE_LOOPS then\n"
    "    while true do n = n + 1 end\n"
    "  end\n"
    "  while true do n = n + 1; t = { n } end\n"
    "end\n"
    "-- Bombs are built of 20 MiB strings: past mimalloc's huge-object size\n"
    "-- (16 MiB), so freeing them gives the pages back to the system at once\n"
    "-- and RSS samples stay about the scene, not about the last bomb.\n"
    "local function bomb(kind)\n"
    "  local BLOCK = string.rep('m', 65536)\n"
    "  if kind == 2 then\n"
    "    local t = {}\n"
    "    while true do t[#t + 1] = string.rep(BLOCK, 320) end\n"
    "  else\n"
    "    local s = string.rep(BLOCK, 320)\n"
    "    while true do s = s .. s end\n"
    "  end\n"
    "end\n"
    "local function fault(kind)\n"
    "  if kind == 1 then runaway() elseif kind == 2 or kind == 3 then bomb(kind) end\n"
    "end\n"
    "return {\n"
    "  fields = { errors = 0, pokes = 0 },\n"
    "  tags = { 'faulty' },\n"
    "  update = function(self, dt)\n"
    "    local id = self.id\n"
    "    local c = query('control')[1]\n"
    "    if c ~= nil and get(c, 'fault_who') == id then fault(get(c, 'fault')) end\n"
    "    local r = rand(id, 400)\n"
    "    if r <= 8 then error('boom from ' .. id .. ' in version ' .. V) end\n"
    "    if r == 9 then self.errors = 'not a number' end\n"
    "    if r == 10 and c ~= nil then set(c, 'quiet', true) end\n"
    "  end,\n"
    "  on_poke = function(self, payload, sender)\n"
    "    self.pokes = self.pokes + 1\n"
    "    local k = payload.kind\n"
    "    if k == 1 then error('poke failed') end\n"
    "    if k == 2 then runaway() elseif k == 3 then bomb(2) end\n"
    "  end,\n"
    "}\n";

/* leaker.lua: only with --inject-leak. Keeps every string it makes in a
 * module-level table (one per worker state), so live Lua memory grows for
 * ever: the growth invariant must catch it. Never rewritten, so no reload
 * frees the table. */
static const char soak_src_leaker[] =
    "local kept = {}\n"
    "return {\n"
    "  fields = { kept = 0 },\n"
    "  tags = { 'leaker' },\n"
    "  update = function(self, dt)\n"
    "    kept[#kept + 1] = string.rep('L', 100) .. self.id .. ':' .. frame()\n"
    "    self.kept = #kept\n"
    "  end,\n"
    "}\n";

#endif
