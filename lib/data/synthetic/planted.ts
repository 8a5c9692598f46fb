/**
 * The planted parameters of the synthetic world (one place, so the docs and the oracle agree with the
 * sampler): scenes and their noise, queries, where negatives and shown lists come from, age bands, rank-list
 * reactions and window shopping.
 */

export const SCENES = ['search', 'recommend', 'ads'] as const;
export type Scene = (typeof SCENES)[number];
export const SCENE_SHARE: Record<Scene, number> = { search: 0.4, recommend: 0.4, ads: 0.2 };
/** Share of noise (popularity-driven) sessions per scene: ads are mostly noise, search rarely. */
export const NOISE: Record<Scene, number> = { search: 0.1, recommend: 0.35, ads: 0.75 };
/** A search query names the category (else only its topic) with this probability. */
export const QUERY_NAMES_CATEGORY = 0.7;
export const FILLER_TOKENS = ['new', 'sale', 'best', 'cheap', 'gift', 'official'];
/**
 * Negatives (and shown lists) mix three sources, as impressions do: global popularity, uniform over items,
 * and the categories of the user's own history (a history-based recommender). The last makes negatives
 * hard: they sit in categories the user touched, and only recency, behaviour type and scene tell whether
 * that category is still, or ever was, something the user would click or buy.
 */
export const NEG_POPULAR = 0.4;
export const NEG_UNIFORM = 0.2;
export const NEG_HISTORY = 0.4;
export const AGE_BANDS = ['<18', '18-24', '25-29', '30-34', '35-39', '40-49', '50+'];
export const AGE_SHARE = [0.05, 0.2, 0.22, 0.2, 0.14, 0.12, 0.07];
/** Rank-list reactions: P(grade ≥ g | grade ≥ g−1) = σ(relevance − threshold[g−1]). */
export const GRADE_THRESHOLDS = [2.0, 3.0, 2.5, 3.5];
/** Share of interest slots that are window shopping (browsed, never bought). */
export const WINDOW_SHOPPING = 0.35;
/** How many price levels above the purchase preference window shopping browses. */
export const ASPIRATION = 1.5;
/** Shares of a rank list drawn from the user's true interests and from the history's categories (rest: popular). */
export const LIST_PERSONAL = 0.3;
export const LIST_HISTORY = 0.4;
