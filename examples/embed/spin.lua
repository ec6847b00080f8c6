-- spin.lua: every entity turns at its own speed, asks the engine's physics how
-- far it can see, and plays a sound and tells the engine at each full turn.
return {
  fields = { angle = 0.0, speed = 1.0, sight = 0.0, turns = 0 },
  update = function(self, dt)
    self.angle = self.angle + self.speed * dt
    self.sight = physics.raycast(math.cos(self.angle), math.sin(self.angle))
    local turns = math.floor(self.angle / (2 * math.pi))
    if turns > self.turns then
      self.turns = turns
      audio.play("whoosh", 0.5)                  -- runs on the engine thread after the frame
      send(0, "turned", { turns = turns })       -- an event to the engine
    end
  end,
}
