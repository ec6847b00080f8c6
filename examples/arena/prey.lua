-- prey.lua: wanders, turns now and then, flees when hit, dies at hp <= 0 and
-- tells its killer so the predator can feed. Natural form (self.<field>).
local SIZE = 1000.0
local SPEED = 40.0

local function wrap(v)
  if v < 0.0 then return v + SIZE elseif v >= SIZE then return v - SIZE end
  return v
end

return {
  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0, hp = 30, age = 0, state = "graze" },
  tags = { "prey" },

  update = function(self, dt)
    local id = self.id
    -- About once a second pick a new heading. rand, never math.random: rand
    -- is the same for every worker count.
    if rand(id, 60) == 1 then
      local a = rand(id) * 2.0 * math.pi
      self.vx = math.cos(a) * SPEED
      self.vy = math.sin(a) * SPEED
      self.state = "graze" -- a new heading ends a flight
    end
    self.x = wrap(self.x + self.vx * dt)
    self.y = wrap(self.y + self.vy * dt)
    local age = self.age + 1
    self.age = age
    -- Slow healing, so a prey that got away recovers.
    if age % 120 == 0 and self.hp < 30 then self.hp = self.hp + 1 end
  end,

  on_hit = function(self, payload, sender)
    local hp = self.hp
    if hp <= 0 then return end -- already dying: several hits can land in one phase
    hp = hp - payload.damage
    self.hp = hp
    if hp <= 0 then
      send(sender, "fed", { amount = 25, age = self.age })
      destroy(self.id)
    else
      -- Flee: run away from the attacker at double speed.
      local sx, sy = get(sender, "x"), get(sender, "y")
      if sx then
        local dx, dy = self.x - sx, self.y - sy
        local d = math.sqrt(dx * dx + dy * dy)
        if d > 0.001 then
          self.vx = dx / d * SPEED * 2.0
          self.vy = dy / d * SPEED * 2.0
        end
        self.state = "flee"
      end
    end
  end,
}
