-- spawner.lua: keeps the prey and predator populations at their starting
-- sizes. It counts them twice a second (query scans every entity, so not every
-- frame) and spawns at most BURST of each per check, at random places. Spawns
-- and destroys are applied at the end of the frame, in a deterministic order.
local SIZE = 1000.0
local BURST = 40

local function spawn_some(id, script, have, goal, speed)
  local n = 0
  while have + n < goal and n < BURST do
    local a = rand(id) * 2.0 * math.pi
    spawn(script, {
      x = rand(id) * SIZE, y = rand(id) * SIZE,
      vx = math.cos(a) * speed, vy = math.sin(a) * speed,
    })
    n = n + 1
  end
  return n
end

return {
  fields = { prey_goal = -1, predator_goal = -1, spawned = 0 },
  tags = { "spawner" },

  update = function(self, dt)
    local id = self.id
    local prey_goal = self.prey_goal
    if prey_goal < 0 then
      -- First frame: the population the host created is the goal.
      self.prey_goal = #query("prey")
      self.predator_goal = #query("predator")
      return
    end
    if frame() % 30 ~= 0 then return end
    local n = spawn_some(id, "prey", #query("prey"), prey_goal, 40.0)
    n = n + spawn_some(id, "predator", #query("predator"), self.predator_goal, 55.0)
    if n > 0 then
      self.spawned = self.spawned + n
    end
    -- One console line a game minute (3600 frames at 60 Hz), not one per refill:
    -- the console is for what a person should read.
    if frame() % 3600 == 0 then
      log(string.format("spawner: %d entities spawned so far", self.spawned))
    end
  end,
}
