export { Lab, type LabOptions, type GuestOptions, type GuestType, type Guest, type XenstoredFlavour, runDirFor } from "./lab";
export { type ExecResult, type ExecOptions } from "./agent-client";
export { buildArtefacts, type LabArtefacts } from "./artefacts";
export { LabError } from "./errors";
export { cacheDir, repoDir } from "./paths";
export { stderrProgress, type Progress } from "./progress";
export { attachSharedLab, runJestInDom0, type Dom0JestResult } from "./testing";
export { blackout, parseBlackout, type BlackoutReport, type BlackoutGap, type BlackoutHist, type BlackoutOptions } from "./blackout";
export { guestSuspends, parsePhases, parsePhasesLine, type GuestSuspend } from "./phases";
