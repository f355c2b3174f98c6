import { InitialSchema1764000000000 } from './1764000000000-InitialSchema';

/** Every migration, oldest first. A new one is appended here. */
export const migrations = [InitialSchema1764000000000];
