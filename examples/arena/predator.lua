-- predator.lua: hunts prey. A string state machine ("wander", "chase",
-- "bite") and an entity field `target`: it reads as the prey's id while the
-- prey lives and as nil once it is destroyed, so a dead target is never
-- chased. Picks a target only when it has none (and then only on about one
-- frame in 60: query() scans every entity), chases it across the wrapping
-- arena, bites when close (event "hit"), and eats when the prey reports its
-- death (event "fed"). Hunger slowly eats its hp; at 0 it dies.
local SIZE = 1000.0
local HALF = SIZE / 2.0
local SPEED = 55.0
local BITE_RANGE = 12.0
local MAX_CHASE = 600 -- frames before giving up on a target

local function wrap(v)
  if v < 0.0 then return v + SIZE elseif v >= SIZE then return v - SIZE end
  return v
end

-- Shortest signed distance on the wrapping axis.
local function delta(from, to)
  local d = to - from
  if d > HALF then return d - SIZE elseif d < -HALF then return d + SIZE end
  return d
end

return {
  fields = {
    x = 0.0, y = 0.0, vx = 0.0, vy = 0.0, hp = 100, kills = 0,
    state = "wander",     -- a string field: interned, compared like any Lua string
    target = ljs.entity,  -- an entity field: nil when unset or once the prey died
    chase = 0, cooldown = 0,
  },
  tags = { "predator" },

  update = function(self, dt)
    local id = self.id
    local x, y = self.x, self.y
    local target, chase = self.target, self.chase

    -- Hunger: lose 5 hp every 90 frames (staggered by id).
    if (frame() + id) % 90 == 0 then
      local hp = self.hp - 5
      self.hp = hp
      if hp <= 0 then
        destroy(id)
        return
      end
    end

    -- Drop a target that escaped for too long (a dead one already reads nil).
    local tx, ty
    if target then
      tx, ty = get(target, "x"), get(target, "y")
      chase = chase + 1
      if tx == nil or chase > MAX_CHASE then target, tx, ty = nil, nil, nil end
    end

    -- Look for prey: sample a few candidates of the (sorted) query result and
    -- take the nearest one.
    if not target and rand(id, 60) == 1 then
      local prey = query("prey")
      local n = #prey
      local best_d = math.huge
      for _ = 1, math.min(n, 4) do
        local cand = prey[rand(id, n)]
        local cx, cy = get(cand, "x"), get(cand, "y")
        if cx then
          local dx, dy = delta(x, cx), delta(y, cy)
          local d = dx * dx + dy * dy
          if d < best_d then best_d, target, tx, ty = d, cand, cx, cy end
        end
      end
      chase = 0
    end

    local cooldown = self.cooldown
    if cooldown > 0 then cooldown = cooldown - 1 end
    local state = "wander"
    if target then
      local dx, dy = delta(x, tx), delta(y, ty)
      local d = math.sqrt(dx * dx + dy * dy)
      state = d <= BITE_RANGE and "bite" or "chase"
      if state == "bite" then
        if cooldown == 0 then
          send(target, "hit", { damage = rand(id, 5, 15) })
          cooldown = 20
        end
        self.vx, self.vy = 0.0, 0.0
      elseif d > 0.001 then
        self.vx, self.vy = dx / d * SPEED, dy / d * SPEED
      end
    end
    self.x = wrap(x + self.vx * dt)
    self.y = wrap(y + self.vy * dt)
    self.state, self.target, self.chase, self.cooldown = state, target, chase, cooldown
  end,

  on_fed = function(self, payload, sender)
    self.hp = math.min(100, self.hp + payload.amount)
    self.kills = self.kills + 1
    if self.target == sender then self.target, self.state = nil, "wander" end
  end,
}
