// Live progress of running triage: polls each run's progress every two seconds.
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("[data-run-id]")) {
    const bar = box.querySelector("progress");
    const state = box.querySelector(".state");
    const eta = box.querySelector(".eta");
    const tick = async () => {
      try {
        const response = await fetch(`/runs/${box.dataset.runId}/progress.json`, { credentials: "same-origin" });
        if (!response.ok) return;
        const run = await response.json();
        bar.max = run.bytes_total || 1;
        bar.value = run.bytes_done;
        state.textContent = run.phase ? `${run.state} (${run.phase})` : run.state;
        eta.textContent = run.seconds_left != null ? `about ${Math.ceil(run.seconds_left)} s left` : "";
        if (["queued", "verifying", "running"].includes(run.state)) setTimeout(tick, 2000);
      } catch (error) { setTimeout(tick, 5000); }
    };
    tick();
  }
});
