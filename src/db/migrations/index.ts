import { InitialSchema1764000000000 } from './1764000000000-InitialSchema';
import { AccountConnectionSettings1764100000000 } from './1764100000000-AccountConnectionSettings';
import { NormalizeStoredLinks1764200000000 } from './1764200000000-NormalizeStoredLinks';
import { ImportedSessionHash1764300000000 } from './1764300000000-ImportedSessionHash';
import { DaemonState1764400000000 } from './1764400000000-DaemonState';
import { JoinClaimsIndex1764500000000 } from './1764500000000-JoinClaimsIndex';
import { LastPostIndex1764600000000 } from './1764600000000-LastPostIndex';
import { TelegramAnswersHold1764700000000 } from './1764700000000-TelegramAnswersHold';
import { PostingPlan1764800000000 } from './1764800000000-PostingPlan';
import { AccountConfigProblem1764900000000 } from './1764900000000-AccountConfigProblem';
import { OpsState1765000000000 } from './1765000000000-OpsState';
import { GroupHoldKind1765100000000 } from './1765100000000-GroupHoldKind';

/** Every migration, oldest first. A new one is appended here. */
export const migrations = [
  InitialSchema1764000000000,
  AccountConnectionSettings1764100000000,
  NormalizeStoredLinks1764200000000,
  ImportedSessionHash1764300000000,
  DaemonState1764400000000,
  JoinClaimsIndex1764500000000,
  LastPostIndex1764600000000,
  TelegramAnswersHold1764700000000,
  PostingPlan1764800000000,
  AccountConfigProblem1764900000000,
  OpsState1765000000000,
  GroupHoldKind1765100000000,
];

export const MIGRATION_NAMES = migrations.map((m) => m.name);
