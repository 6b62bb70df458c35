"""The keys MindFormers declares for each config section the console reads, as data.

Read from the MindFormers repository (github.com/mindspore-ai/mindformers, the history gitee's
mindspore-lab/mindformers mirrors) on the branches r1.5.0 to master (2.0), the releases that have DeepSeek-V3:
names only, each list with the file, class and branches it came from, then the keys of every published
DeepSeek-V3 config that those classes do not declare (`PUBLISHED_CONFIGS`), so a published config is never
called a typo. model/keys.py reads these lists; what MindFormers does with a key it does not declare is in
`REFUSING_SECTIONS` there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Declared:
    """Key names one MindFormers source declares for a section."""

    source: str
    """`path: class (branches)`, or the published configs."""
    names: str
    """The key names, separated by white space."""

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self.names.split())


GRAPH_SECTIONS: Mapping[str, tuple[Declared, ...]] = {
    '': (
        Declared('mindformers/tools/register/template.py: GeneralConfig (r1.5.0 to master)', """
            seed output_dir run_mode use_parallel resume_training print_separate_loss load_checkpoint
            load_ckpt_format auto_trans_ckpt transform_process_num src_strategy_path_or_dir only_save_strategy
            load_ckpt_async use_legacy use_legacy_format pretrained_model_dir balanced_load reshard_worker_num
            do_eval eval_step_interval eval_epoch_interval ignore_data_skip data_skip_steps profile
            profile_communication profile_memory init_start_profile profile_start_step profile_stop_step
            profile_rank_ids profile_pipeline profile_level mstx layer_scale layer_decay lr_scale
            lr_scale_factor micro_batch_interleave_num remote_save_url save_file input_data predict_batch_size
            adapter_id exclude_cann_cpu train_precision_sync infer_precision_sync postprocess_use_numpy
            ckpt_use_legacy_format
            """),
        Declared('mindformers/tools/register/template.py: CONFIG_NAME_TO_CLASS (r1.5.0 to master)', """
            general_config parallel_config recompute_config swap_config moe_config runner_config parallel
            context train_dataset train_dataset_task processor eval_dataset eval_dataset_task trainer model
            runner_wrapper optimizer lr_schedule metric callbacks monitor_config eval_callbacks
            """),
        Declared('mindformers/core/config_args.py: MFContextConfig (r1.7.0 to master)', """
            use_graceful_exit affinity_cpu_list affinity_config monitor_local_loss monitor_device_local_loss
            """),
        Declared('mindformers/core/config_args.py: ConfigArguments (r1.7.0 to master)', """
            auto_tune filepath_prefix autotune_per_step predict_dataset save_checkpoint cloud_config
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            kernel_launch_group
            """),
    ),
    'parallel_config': (
        Declared('mindformers/tools/register/template.py: ParallelConfig (r1.5.0 to master)', """
            data_parallel model_parallel context_parallel expert_parallel pipeline_stage micro_batch_num
            seq_split_num use_seq_parallel optimizer_shard gradient_aggregation_group vocab_emb_dp
            context_parallel_algo ulysses_degree_in_cp mem_coeff
            """),
        Declared('mindformers/modules/transformer/transformer.py: '
                 'TransformerOpParallelConfig (r1.5.0 to master)',
                 """
            recompute swap
            """),
    ),
    'parallel': (
        Declared('mindformers/tools/register/template.py: MsParallelConfig (r1.5.0 to master)', """
            parallel_mode full_batch search_mode enable_parallel_optimizer gradients_mean enable_alltoall
            strategy_ckpt_save_file
            """),
        Declared('mindformers/core/config_args.py: ParallelContextConfig (r1.7.0 to master)', """
            device_num global_rank gradient_fp32_sync auto_parallel_search_mode parameter_broadcast
            strategy_ckpt_load_file all_reduce_fusion_config pipeline_stages grad_accumulation_step
            parallel_optimizer_config comm_fusion auto_pipeline
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            strategy_ckpt_config dataset_strategy pipeline_config
            """),
    ),
    'parallel.parallel_optimizer_config': (
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            gradient_accumulation_shard parallel_optimizer_threshold optimizer_weight_shard_size
            """),
    ),
    'model': (
        Declared('mindformers/tools/register/template.py: ModelConfig (r1.5.0 to master)', """
            model_config
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            arch
            """),
    ),
    'moe_config': (
        Declared('mindformers/tools/register/template.py: MoEConfig (r1.5.0 to master)', """
            expert_num capacity_factor aux_loss_factor num_experts_chosen expert_group_size group_wise_a2a
            comp_comm_parallel comp_comm_parallel_degree save_token_distribution cur_layer
            enable_cold_hot_expert update_step hot_expert_num cold_token_percent moe_module_name
            routing_policy norm_topk_prob enable_sdrop use_fused_ops_topkrouter router_dense_type
            shared_expert_num use_shared_expert_gating max_router_load topk_method topk_group n_group
            first_k_dense_replace moe_intermediate_size routed_scaling_factor aux_loss_types aux_loss_factors
            z_loss_factor balance_via_topk_bias topk_bias_update_rate use_allgather_dispatcher
            moe_shared_expert_overlap expert_model_parallel use_gating_sigmoid enable_deredundency
            npu_nums_per_device use_gmm enable_gmm_safe_tokens use_fused_ops_permute callback_moe_droprate
            dispatch_global_max_bs ep_extend_tp
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            moe_tensor_parallel moe_expert_parallel
            """),
    ),
    'runner_config': (
        Declared('mindformers/tools/register/template.py: RunnerConfig (r1.5.0 to master)', """
            batch_size epochs sink_mode sink_size gradient_accumulation_steps num_classes stop_step
            """),
    ),
    'recompute_config': (
        Declared('mindformers/tools/register/template.py: RecomputeConfig (r1.5.0 to master)', """
            recompute select_recompute parallel_optimizer_comm_recompute select_comm_recompute
            mp_comm_recompute recompute_slice_activation select_recompute_exclude
            select_comm_recompute_exclude
            """),
    ),
    'context': (
        Declared('mindformers/tools/register/template.py: ContextConfig (r1.5.0 to master)', """
            mode device_target device_id max_device_memory max_call_depth
            """),
        Declared('mindformers/core/config_args.py: ContextConfig (r1.7.0 to master)', """
            precompile_only save_graphs save_graphs_path auto_tune_mode enable_reduce_precision
            variable_memory_max_size enable_profiling profiling_options enable_auto_mixed_precision
            reserve_class_name_in_scope check_bprop print_file_path enable_sparse env_config_path
            save_compile_cache runtime_num_threads load_compile_cache grad_for_scalar pynative_synchronize
            mempool_block_size deterministic jit_config memory_optimize_level enable_dump save_dump_path
            """),
        Declared('mindformers/core/context/build_context.py: _MSContextApplier._migrate (master)', """
            ascend_config dataset_broadcast_opt_level
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            affinity_cpu_list infer_precision_sync
            """),
    ),
}
"""Research era and mcore: the sections both read, by dotted path ('' is the top level)."""

RESEARCH_MODEL_CONFIG: Mapping[str, tuple[Declared, ...]] = {
    'model.model_config': (
        Declared('research/deepseek3/deepseek3_config.py: DeepseekV3Config (r1.5.0 to master)', """
            batch_size seq_length hidden_size num_layers num_heads n_kv_heads max_position_embeddings
            intermediate_size multiple_of ffn_dim_multiplier kv_lora_rank q_lora_rank qk_rope_head_dim
            v_head_dim qk_nope_head_dim vocab_size rms_norm_eps bos_token_id eos_token_id pad_token_id
            ignore_token_id theta compute_dtype layernorm_compute_type softmax_compute_type rotary_dtype
            param_init_type init_method_std qkv_has_bias qkv_concat ffn_concat parallel_config moe_config
            use_past extend_method scaling_factor is_dynamic use_flash_attention fine_grain_interleave
            pp_interleave_num offset checkpoint_name_or_path repetition_penalty max_decode_length block_size
            num_blocks top_k top_p do_sample mtp_depth mtp_loss_factor return_extra_loss input_sliced_sig
            use_fused_rope use_fused_swiglu enable_fa_var_len return_hidden_states is_mtp_model
            enable_micro_batch
            """),
        Declared('mindformers/models/configuration_utils.py: PretrainedConfig (r1.5.0 to master)', """
            mindformers_version tokenizer_class architectures is_encoder_decoder is_sample_acceleration
            quantization_config quantization pet_config pretrained_model_name_or_path cache_dir force_download
            local_files_only token revision save_json resume_download proxies trust_remote_code subfolder
            return_unused_kwargs name_or_path pretrained_model_dir commit_message repo_id rl_config
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            type auto_register router_dense_type auto_map use_mla_pre use_mla_op
            """),
    ),
}
"""Research era `model.model_config`: the research DeepseekV3Config and its base."""

MCORE_MODEL_CONFIG: Mapping[str, tuple[Declared, ...]] = {
    'model.model_config': (
        Declared('mindformers/models/configuration_utils.py: PretrainedConfig (r1.5.0 to master)', """
            checkpoint_name_or_path mindformers_version tokenizer_class bos_token_id pad_token_id eos_token_id
            architectures is_encoder_decoder is_sample_acceleration quantization_config quantization
            parallel_config pet_config pretrained_model_name_or_path cache_dir force_download local_files_only
            token revision save_json resume_download proxies trust_remote_code subfolder return_unused_kwargs
            name_or_path pretrained_model_dir commit_message repo_id rl_config
            """),
        Declared('mindformers/models/deepseek3/configuration_deepseek_v3.py: '
                 'DeepseekV3Config (r1.6.0 to master)',
                 """
            vocab_size hidden_size intermediate_size moe_intermediate_size num_hidden_layers
            num_nextn_predict_layers num_attention_heads num_key_value_heads n_shared_experts n_routed_experts
            ep_size routed_scaling_factor kv_lora_rank q_lora_rank qk_rope_head_dim v_head_dim
            qk_nope_head_dim topk_method n_group topk_group num_experts_per_tok moe_layer_freq
            first_k_dense_replace norm_topk_prob scoring_func hidden_act max_position_embeddings
            initializer_range rms_norm_eps use_cache tie_word_embeddings rope_theta rope_scaling
            attention_bias attention_dropout seq_length compute_dtype layernorm_compute_dtype rotary_dtype
            hidden_dropout use_flash_attention moe_router_score_function moe_router_enable_expert_bias
            moe_router_fusion normalization add_bias_linear gated_linear_unit multi_latent_attention
            is_dynamic
            """),
        Declared('mindformers/parallel_core/transformer_config.py: '
                 'TransformerConfig, MLATransformerConfig (r1.6.0 to master)',
                 """
            batch_size context_parallel_algo rotary_cos_format bias_swiglu_fusion mla_qkv_concat
            use_contiguous_weight_layout_attention use_interleaved_weight_layout_mlp fused_norm
            add_mlp_fc1_bias_linear add_mlp_fc2_bias_linear rotary_seq_len_interpolation_factor
            use_rope_scaling input_layout sparse_mode use_alibi_mask use_attn_mask_compression
            use_eod_attn_mask_compression use_attention_mask use_ring_attention fp16_lm_cross_entropy
            untie_embeddings_and_output_weights mask_func_type track_max_attention_logit comp_comm_parallel
            comp_comm_parallel_degree use_fused_ops_topkrouter use_shared_expert_gating npu_nums_per_device
            use_pad_tokens callback_moe_droprate moe_router_force_expert_balance use_eod_reset
            print_separate_loss ignore_token_id sandwich_norm block_size num_blocks pre_process post_process
            dispatch_global_max_bs attn_reduce_scatter attn_allgather attn_allreduce ffn_reduce_scatter
            ffn_allgather ffn_allreduce use_alltoall use_fused_mla disable_lazy_inline coeff
            data_parallel_size tensor_model_parallel_size pipeline_model_parallel_size
            virtual_pipeline_model_parallel_size sequence_parallel context_parallel_size
            hierarchical_context_parallel_sizes expert_model_parallel_size expert_tensor_parallel_size
            micro_batch_num seq_split_num gradient_aggregation_group offset ulysses_degree_in_cp vocab_emb_dp
            params_dtype embedding_params_dtype cpu_offloading cpu_offloading_num_layers op_swap
            default_prefetch num_layers mtp_num_layers mtp_loss_scaling_factor softmax_scale num_query_groups
            ffn_hidden_size kv_channels fp32_residual_connection apply_residual_connection_post_layernorm
            layernorm_epsilon add_qkv_bias activation_func num_moe_experts activation_func_clamp_value
            moe_n_hash_layers actual_vocab_size rotary_interleaved calculate_per_token_loss
            position_embedding_type nope_layer_interval rotary_base partial_rotary_factor qk_layernorm
            experimental_attention_variant dsa_indexer_n_heads dsa_indexer_head_dim dsa_indexer_topk
            dsa_indexer_loss_coeff dsa_indexer_use_sparse_loss init_method output_layer_init_method
            init_method_std param_init_std_rules apply_query_key_layer_scaling attention_softmax_in_fp32
            softmax_compute_dtype bias_dropout_fusion apply_rope_fusion recompute select_recompute
            parallel_optimizer_comm_recompute select_comm_recompute mp_comm_recompute
            recompute_slice_activation select_recompute_exclude select_comm_recompute_exclude
            moe_shared_expert_intermediate_size moe_shared_expert_overlap moe_ffn_hidden_size
            moe_router_load_balancing_type moe_router_topk moe_router_num_groups moe_router_group_topk
            moe_router_pre_softmax moe_router_topk_scaling_factor moe_router_dtype moe_router_bias_update_rate
            moe_grouped_gemm moe_aux_loss_coeff moe_z_loss_coeff group_wise_a2a moe_token_dispatcher_type
            moe_expert_capacity_factor moe_token_drop_policy moe_permute_fusion moe_apply_probs_on_input
            shared_expert_num print_expert_load enable_expert_relocation expert_relocation_initial_iteration
            expert_relocation_freq cp_comm_type window_size window_attn_skip_freq model_architecture
            num_encoder_layers num_decoder_layers enable_hyper_connections enable_hc_head num_residual_streams
            mhc_sinkhorn_iterations mhc_init_gating_factor mhc_layernorm_epsilon use_fused_mhc chunk_loss_num
            qk_head_dim qk_pos_emb_head_dim rope_type rotary_percent rotary_scaling_factor
            original_max_position_embeddings beta_fast beta_slow mscale mscale_all_dim csa_window_size
            csa_compress_ratios csa_compress_rotary_base csa_dense_mode o_groups o_lora_rank
            apply_dsa_kernel_fusion layernorm_zero_centered_gamma init_model_with_meta_device
            disable_bf16_reduced_precision_matmul bias_activation_fusion masked_softmax_fusion
            persist_layer_norm memory_efficient_layer_norm moe_input_jitter_eps moe_enable_deepep
            moe_per_layer_logging moe_pad_expert_input_to_capacity use_allgather_dispatcher
            """),
        Declared('mindformers/parallel_core/model_parallel_config.py: ModelParallelConfig (r1.6.0 to master)',
                 """
            fp16 bf16 finalize_model_grads_func grad_scale_func grad_sync_func param_sync_func
            num_microbatches_with_partial_activation_checkpoints
            """),
        Declared('mindformers/parallel_core/mf_model_config.py: MFModelConfig (r1.6.0 to r1.8.0)', """
            attention_pre_tokens attention_next_tokens moe_init_method_std parallel_decoding_params
            use_contiguous_weight_layout use_fused_ops_permute enable_deredundency aux_loss_types
            aux_loss_factors residual_dtype monitor_local_loss monitor_device_local_loss
            """),
        Declared('mindformers/parallel_core/transformer_config_utils.py: '
                 'COMMON_CONFIG_MAPPING, DEFAULT_WHITE_KEY (r1.6.0 to master)',
                 """
            data_parallel model_parallel pipeline_stage pp_interleave_num use_seq_parallel context_parallel
            expert_parallel expert_model_parallel param_init_type swap layer_swap mtp_depth mtp_loss_factor
            num_heads n_head n_kv_heads head_dim layer_norm_epsilon qkv_has_bias expert_num num_experts
            n_layer use_qk_norm index_head_dim index_n_heads index_topk extend_method use_fused_rope
            use_fused_swiglu num_experts_chosen use_gating_sigmoid router_dense_type balance_via_topk_bias
            topk_bias_update_rate use_gmm z_loss_factor capacity_factor enable_sdrop enable_gmm_safe_tokens
            theta scaling_factor factor rope_interleave
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            input_sliced_sig model_type
            """),
    ),
}
"""mcore `model.model_config`: the Hugging Face names and the TransformerConfig names they convert to;
pynative's `model` takes the same."""

PYNATIVE_SECTIONS: Mapping[str, tuple[Declared, ...]] = {
    '': (
        Declared('mindformers/pynative/config/config.py: TrainConfig (r1.9.0 to master)', """
            checkpoint training parallelism optimizer lr_scheduler train_dataset model monitor context
            profiler recompute recompute_comm swap callbacks lora_config
            """),
    ),
    'parallelism': (
        Declared('mindformers/pynative/config/config.py: ParallelismConfig (r1.9.0 to master)', """
            data_parallel_shard data_parallel_shard_strategy reshard_after_forward_policy cpu_offload
            disable_gradient_division dense_fsdp_shard_size tensor_parallel context_parallel
            context_parallel_method context_parallel_async ulysses_degree_in_cp context_parallel_mask_type
            pipeline_parallel pipeline_parallel_layers_per_stage pipeline_parallel_schedule
            pipeline_parallel_microbatch_size pipeline_parallel_interleave_num pipeline_parallel_overlap_p2p
            pipeline_parallel_overlap_b_f pipeline_parallel_enable_dxdw_split pipeline_parallel_p2p_transport
            sequence_parallel enable_mc2 enable_loss_parallel expert_parallel npu_nums_per_device
            moe_token_dispatcher_type expert_parallel_async_d2h expert_parallel_use_safe_tokens
            hsdp_shard_size hsdp_optimizer_level hsdp_threshold
            """),
    ),
    'training': (
        Declared('mindformers/pynative/config/config.py: TrainingConfig (r1.9.0 to master)', """
            steps local_batch_size global_batch_size max_norm seed deterministic rampup_batch_size
            """),
    ),
    'recompute': (
        Declared('mindformers/pynative/config/config.py: RecomputeConfig (r1.9.0 to master)', """
            mode full_recompute_layer select_module exclude_op full_recompute select_recompute
            """),
    ),
    'context': (
        Declared('mindformers/pynative/config/config.py: ContextConfig (r1.9.0 to master)', """
            mode max_device_memory device_target
            """),
    ),
    'model': (
        Declared('mindformers/pynative/config/config.py: ModelConfig (r1.9.0 to master)', """
            model_type architectures
            """),
        Declared('published DeepSeek-V3 configs (PUBLISHED_CONFIGS)', """
            vocab_size seq_length hidden_size intermediate_size num_hidden_layers max_position_embeddings
            hidden_act num_attention_heads rms_norm_eps add_bias_linear use_flash_attention
            multi_latent_attention mla_qkv_concat kv_lora_rank q_lora_rank qk_rope_head_dim v_head_dim
            qk_nope_head_dim qk_layernorm attention_dropout hidden_dropout params_dtype compute_dtype
            layernorm_compute_dtype softmax_compute_dtype rotary_dtype initializer_range
            num_nextn_predict_layers mtp_loss_scaling_factor position_embedding_type rotary_scaling_factor
            beta_fast beta_slow mscale mscale_all_dim rope_theta router_dense_type moe_grouped_gemm
            gated_linear_unit scoring_func norm_topk_prob moe_intermediate_size routed_scaling_factor
            first_k_dense_replace n_routed_experts num_experts_per_tok n_shared_experts
            moe_shared_expert_intermediate_size moe_router_load_balancing_type moe_aux_loss_coeff
            moe_router_enable_expert_bias moe_router_bias_update_rate topk_group n_group scaling_factor
            moe_token_dispatcher_type moe_token_drop_policy use_pad_tokens
            """),
    ),
}
"""Pynative (mindformers/pynative/config/config.py): the top level and its sections."""

PUBLISHED_CONFIGS: tuple[tuple[str, str], ...] = (
    ('configs/deepseek3/finetune_deepseek3_12b_16p_pp16.yaml',
     'master, r1.9.0, r1.9.0-beta1, r2.0.0'),
    ('configs/deepseek3/finetune_deepseek3_671b.yaml',
     'master, r1.9.0, r1.9.0-beta1, r2.0.0'),
    ('configs/deepseek3/predict_deepseek3_671b.yaml',
     '16 branches, br_feature_infer to r2.0.0'),
    ('configs/deepseek3/pretrain_deepseek3_12b_16p_pp16.yaml',
     'master, r1.9.0, r1.9.0-beta1, r2.0.0'),
    ('configs/deepseek3/pretrain_deepseek3_671b.yaml',
     'master, r1.9.0, r1.9.0-beta1, r2.0.0'),
    ('research/deepseek3/deepseek3_671b/finetune_deepseek3_671b.yaml',
     '9 branches, br_feature_checkpoint to r1.6.0-beta1'),
    ('research/deepseek3/deepseek3_671b/predict_deepseek3_671b.yaml',
     '25 branches, br_feature_checkpoint to r2.0.0'),
    ('research/deepseek3/deepseek3_671b/predict_deepseek3_671b_w8a8.yaml',
     '24 branches, br_feature_checkpoint to r2.0.0'),
    ('research/deepseek3/deepseek3_671b/pretrain_deepseek3_4layer_8p.yaml',
     'br_feature_infer_300iduo, br_infer_deepseek_ep'),
    ('research/deepseek3/deepseek3_671b/pretrain_deepseek3_671b.yaml',
     '9 branches, br_feature_checkpoint to r1.6.0-beta1'),
    ('research/deepseek3/deepseek_r1_671b/predict_deepseek_r1_10layers_tp4.yaml',
     'br_feature_infer_300iduo'),
    ('research/deepseek3/deepseek_r1_671b/predict_deepseek_r1_61layers_tp4pp6.yaml',
     'br_feature_infer_300iduo, br_infer_boom'),
    ('research/deepseek3/deepseek_r1_671b/predict_deepseek_r1_61layers_tp8pp2.yaml',
     'br_infer_boom'),
    ('research/deepseek3/deepseek_r1_671b/predict_deepseek_r1_671b.yaml',
     '24 branches, br_feature_checkpoint to r2.0.0'),
    ('research/deepseek3/deepseek_r1_671b/predict_deepseek_r1_671b_w8a8.yaml',
     '24 branches, br_feature_checkpoint to r2.0.0'),
    ('research/deepseek3/deepseek_r1_671b/predict_deepseek_r1_671b_w8a8_ep16.yaml',
     '18 branches, br_feature_infer to r2.0.0'),
    ('research/deepseek3/deepseek_r1_671b/predict_deepseek_r1_671b_w8a8_ep4tp4.yaml',
     '18 branches, br_feature_infer to r2.0.0'),
    ('tests/st/test_distri_core/test_parallel_seqpipe/pretrain_deepseek3_4layer_4p.yaml',
     'br_feature_checkpoint, br_feature_mcore, br_feature_rl_dpo, r1.5.0'),
    ('tests/st/test_distri_core/test_parallel_seqpipe/pretrain_deepseek3_4layer_4p_no_seqpp.yaml',
     'br_feature_checkpoint, br_feature_mcore, br_feature_rl_dpo, r1.5.0'),
    ('tests/st/test_multi_cards_cases/test_model/test_deepseek3/deepseekv3_train.yaml',
     '12 branches, br_feature_llm_trainer to r2.0.0'),
    ('tests/st/test_multi_cards_cases/test_model/test_deepseek3/test_deepseek3_infer/predict_deepseek3_671b.yaml',
     '11 branches, br_feature_llm_trainer to r2.0.0'),
    ('tests/st/test_multi_cards_cases/test_optimizer/test_pma/deepseekv3_train.yaml',
     '6 branches, br_feature_llm_trainer to r2.0.0'),
    ('tests/st/test_multi_cards_cases/test_pynative/test_models/test_deepseek3/pynative_ds3.yaml',
     'master, r2.0.0'),
)
"""The DeepSeek-V3 configs in the MindFormers repository (every branch, research/, configs/ and tests/st/)
whose keys the lists above hold, each with the branches it was read on."""
